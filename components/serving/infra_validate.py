from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def infra_validate(
    model: Input[Model], test_data: Input[Dataset], validation: Output[Artifact], rows: int = 200
) -> NamedTuple("InfraOutputs", [("passed", bool), ("reason", str)]):
    """Serve the candidate with the real KServe ModelServer on loopback and compare.

    Held-out rows go through V1 and V2; the gate passes only if every request succeeds
    and served predictions equal the in-process ones.

    Args:
        model: Model folder from ``train``.
        test_data: Held-out rows (Parquet); the first ``rows`` are sent.
        validation: The verdict (JSON: ``passed``, ``reason``), which ``deploy`` takes
            and re-checks.
        rows: How many rows to send.

    Returns:
        passed: whether serving matches; reason: a sentence saying why.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.serving import steps

    log = logging.getLogger("kfp_mlops.components.serving.infra_validate")
    result = steps.infra_validate(model.path, test_data.path, validation.path, rows)
    log.info(result.reason)
    validation.metadata.update({"passed": result.passed, "reason": result.reason})
    return namedtuple("InfraOutputs", ["passed", "reason"])(result.passed, result.reason)
