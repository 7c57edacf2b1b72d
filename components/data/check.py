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

    from kfp_mlops.data.bundled import default_target
    from kfp_mlops.data.checks import check_training_data
    from kfp_mlops.data.ingest import dataset_columns, read_dataset
    from kfp_mlops.data.sources import DataError
    from kfp_mlops.model.registry import model_name_for, validate_name

    log = logging.getLogger("kfp_mlops.components.data.check_data")
    target = default_target(source) if target == "auto" else target
    if not target:
        raise DataError(f"no target column given for {source!r}; pass --target COLUMN")
    # Only the target column is read: the checks need the other columns' names only.
    columns = dataset_columns(dataset.path)
    frame = read_dataset(dataset.path, columns=[target] if target in columns else [])
    checked = check_training_data(frame, target, None if task == "auto" else task, columns=columns)
    name = model_name_for(source) if model_name == "auto" else validate_name(model_name)
    log.info("data check passed: %s rows, %s columns, task %s",
             checked.rows, checked.columns, checked.task)
    outputs = namedtuple("CheckOutputs", ["target", "task", "rows", "model_name"])
    return outputs(target, checked.task, checked.rows, name)
