from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def bless_model(
    model: Input[Model],
    metrics: Input[Metrics],
    test_data: Input[Dataset],
    store: str,
    model_name: str,
    task: str,
    comparison: Output[Markdown],
    blessing: Output[Artifact],
    quality_metric: str = "auto",
    quality_threshold: str = "auto",
    policy: str = "auto",
    force_new_version: bool = False,
) -> NamedTuple("BlessOutputs", [("passed", bool), ("reason", str)]):
    """The model gate: absolute thresholds and the current champion; drives ``dsl.If``.

    The production version (if any) is scored on the same held-out rows; the
    challenger is blessed when it meets every threshold and is not worse than the
    champion by more than the tolerance. A challenger trained from the same data,
    settings and code as a published version is not blessed again ("identical to NAME
    version N"): there is nothing new to publish.

    Args:
        model: The challenger's model folder; only its metadata is read.
        metrics: Challenger metrics from ``evaluate``.
        test_data: The held-out rows the challenger was scored on.
        store: Store URI holding the registry.
        model_name: Registry name.
        task: ``classification`` or ``regression``.
        comparison: The comparison table (Markdown).
        blessing: The verdict (JSON: ``passed``, ``reason``, ``blessing`` with the
            comparison table, policy and champion), which ``publish``, ``deploy`` and
            ``model-card`` take and re-check.
        quality_metric: Metric of the default policy; ``auto``: accuracy or r2.
        quality_threshold: Its threshold; ``auto``: 0.7 accuracy or 0.2 r2.
        policy: A full policy (``accuracy>=0.8,f1_macro>=0.7;tolerance=0.01``) that
            replaces the two above; ``auto`` builds one from them.
        force_new_version: Judge and publish the challenger even when a published
            version was trained from the same data, settings and code.

    Returns:
        passed: blessed or not (for ``dsl.If``); reason: why.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.model import steps
    from kfp_mlops.model.settings import BlessingSettings

    log = logging.getLogger("kfp_mlops.components.model.bless_model")
    settings = BlessingSettings.from_parameters(quality_metric, quality_threshold, policy)
    decision = steps.bless_model(
        model.path, dict(metrics.metadata), test_data.path, store, model_name, task, settings,
        comparison.path, blessing.path, force_new_version=force_new_version)
    log.info(decision.reason)
    blessing.metadata.update({"passed": decision.passed, "reason": decision.reason,
                              "policy": decision.policy})
    if decision.identical_to is not None:
        blessing.metadata["identical_to"] = decision.identical_to
    return namedtuple("BlessOutputs", ["passed", "reason"])(decision.passed, decision.reason)
