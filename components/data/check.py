from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def check_data(
    dataset: Input[Dataset],
    source: str,
    target: str = "auto",
    task: str = "auto",
    model_name: str = "auto",
) -> NamedTuple(
    "CheckOutputs", [("target", str), ("task", str), ("rows", int), ("model_name", str)]
):
    """Fail fast unless the data can train a model: target present, enough rows, 2+ classes.

    Args:
        dataset: Parquet data from ``ingest``.
        source: The ingested source, to default the target of bundled data sets.
        target: Target column; ``auto`` only for bundled data sets.
        task: ``classification``, ``regression``, or ``auto`` (inferred from the target).
        model_name: Registry name; ``auto`` derives one from the source.

    Returns:
        target: the target column; task: the task to train; rows: rows with a target;
        model_name: the registry name (also the schema name).
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.model import steps

    log = logging.getLogger("kfp_mlops.components.data.check_data")
    checked = steps.check_data(dataset.path, source, target, task, model_name)
    log.info("data check passed: %s rows, %s columns, task %s",
             checked.rows, checked.columns, checked.task)
    outputs = namedtuple("CheckOutputs", ["target", "task", "rows", "model_name"])
    return outputs(checked.target, checked.task, checked.rows, checked.model_name)
