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
    from collections import namedtuple

    from kfp_mlops.gates import write_verdict
    from kfp_mlops.model.blessing import BlessingPolicy
    from kfp_mlops.model.champion import bless_challenger, evaluate_champion
    from kfp_mlops.model.gates import policy_spec
    from kfp_mlops.model.identity import identical_version
    from kfp_mlops.model.package import read_metadata

    fingerprint = read_metadata(model.path).training_fingerprint
    same = None if force_new_version else identical_version(store, model_name, fingerprint)
    if same is not None:
        reason = (f"identical to {model_name} version {same} (same data, settings and code): "
                  "nothing new to publish; force a new version to publish it anyway")
        write_verdict(blessing.path, False, reason, identical_to=same,
                      blessing={"blessed": False, "reason": reason, "comparisons": []})
        blessing.metadata.update({"passed": False, "reason": reason, "identical_to": same})
        with open(comparison.path, "w") as handle:
            handle.write(f"{reason}\n")
        print(reason)
        return namedtuple("BlessOutputs", ["passed", "reason"])(False, reason)
    champion = evaluate_champion(store, model_name, test_data.path)
    spec = policy_spec(task, quality_metric, quality_threshold, policy)
    verdict = bless_challenger(dict(metrics.metadata), champion, task, spec)
    with open(comparison.path, "w") as handle:
        handle.write(f"Policy: {BlessingPolicy.coerce(spec, task).describe()} (`{spec}`)\n\n"
                     f"{verdict.to_markdown()}\n")
    print(verdict.reason)
    payload = {**verdict.to_dict(), "policy": spec, "champion_version": champion.version,
               "champion_metrics": champion.metrics}
    write_verdict(blessing.path, verdict.blessed, verdict.reason, blessing=payload)
    blessing.metadata.update({"passed": verdict.blessed, "reason": verdict.reason, "policy": spec})
    return namedtuple("BlessOutputs", ["passed", "reason"])(verdict.blessed, verdict.reason)
