from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Metrics

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def quality_gate(
    metrics: Input[Metrics],
    task: str,
    metric: str = "auto",
    threshold: str = "auto",
) -> NamedTuple("GateOutputs", [("passed", bool), ("reason", str)]):
    """Decide whether the model is good enough to publish; drives ``dsl.If``.

    Args:
        metrics: Metrics from ``evaluate``.
        task: ``classification`` or ``regression``.
        metric: Metric to judge; ``auto``: accuracy, or r2 for regression.
        threshold: Minimum (maximum for rmse/mae/log_loss) value; ``auto``: per task.

    Returns:
        passed: whether the gate passed; reason: a sentence saying why.
    """
    from collections import namedtuple

    from kfp_mlops.model.gates import quality_gate as decide

    result = decide(dict(metrics.metadata), task, metric, threshold)
    print(result.reason)
    return namedtuple("GateOutputs", ["passed", "reason"])(result.passed, result.reason)
