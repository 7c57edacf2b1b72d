"""Champion/challenger: evaluate the production model on the challenger's test data."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kfp_mlops.model.blessing import Blessing, BlessingPolicy, bless
from kfp_mlops.model.registry import Registry, RegistryError
from kfp_mlops.storage import open_store


@dataclass
class Champion:
    """The production version's metrics on the same held-out rows, if there is one."""

    version: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


def evaluate_champion(store_uri: str, name: str, test_path: str | Path) -> Champion:
    """Evaluate ``name@production`` on the Parquet at ``test_path`` (no champion: empty)."""
    registry = Registry(open_store(store_uri))
    try:
        production = registry.get(f"{name}@production")
    except RegistryError:
        return Champion(note=f"no production version of {name!r} yet: first model")
    # Imported here: scikit-learn costs a second of start-up, and a first model has no
    # champion to score.
    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model.evaluate import evaluate_model
    from kfp_mlops.model.package import load_model_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder, _ = registry.download(production.ref, Path(tmp) / "champion")
        try:
            model, metadata = load_model_folder(folder)
            evaluation = evaluate_model(model, metadata, read_dataset(test_path))
        except Exception as exc:  # schema changed, missing columns: not comparable
            return Champion(
                version=production.version,
                note=f"champion {production.ref} cannot score this data ({exc}); "
                "judged on absolute thresholds only",
            )
    return Champion(production.version, evaluation.metrics, f"champion is {production.ref}")


def bless_challenger(
    challenger: dict[str, float], champion: Champion, task: str, policy: str
) -> Blessing:
    """Apply the policy; the champion counts only when it could be evaluated."""
    verdict = bless(challenger, champion.metrics or None, BlessingPolicy.coerce(policy, task))
    if champion.note:
        verdict.reason = f"{verdict.reason} ({champion.note})"
    return verdict


@dataclass
class GateDecision:
    """What the model gate decided, as the KFP component and the Airflow step report it."""

    passed: bool
    reason: str
    policy: str
    markdown: str  # the comparison table, or the identical-version sentence
    identical_to: int | None = None


def reached_production(store_uri: str, name: str, version: int) -> bool:
    """Whether ``name@version`` is, or ever was, the production version."""
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.storage import open_store

    registry = Registry(open_store(store_uri))
    if registry.get(f"{name}@{version}").stage == "production":
        return True
    return any(t.version == version and t.to_stage == "production"
               for t in registry.history(name))


def model_gate(
    store_uri: str, name: str, test_path: str | Path, metrics: dict[str, float], task: str,
    spec: str, verdict_path: str | Path, fingerprint: str | None = None,
) -> GateDecision:
    """Judge the challenger and write the verdict file publish and deploy re-check.

    With a ``fingerprint`` that a published version of ``name`` shares, nothing is
    judged: the challenger is identical to that version and is not blessed again.
    """
    from kfp_mlops.gates import write_verdict
    from kfp_mlops.model.identity import identical_version

    same = identical_version(store_uri, name, fingerprint)
    if same is not None and not reached_production(store_uri, name, same):
        from kfp_mlops.model.registry import finish_command

        reason = (f"identical to {name} version {same} (same data, settings and code), which "
                  "was published but never promoted to production: its release did not "
                  "finish (the store or the cluster failed between publish and promotion, or "
                  f"the serving gate stopped it). Finish it with `{finish_command(name, same)}` "
                  "once it serves, or rerun with --force-new-version to publish, serve-test "
                  "and deploy a new version")
        write_verdict(verdict_path, False, reason,
                      blessing={"blessed": False, "reason": reason, "comparisons": []},
                      unfinished_release=same)
        return GateDecision(False, reason, spec, reason)
    if same is not None:
        reason = (f"identical to {name} version {same} (same data, settings and code): "
                  "nothing new to publish; force a new version to publish it anyway")
        write_verdict(verdict_path, False, reason, identical_to=same,
                      blessing={"blessed": False, "reason": reason, "comparisons": []})
        return GateDecision(False, reason, spec, reason, identical_to=same)
    champion = evaluate_champion(store_uri, name, test_path)
    verdict = bless_challenger(metrics, champion, task, spec)
    payload = {**verdict.to_dict(), "policy": spec, "champion_version": champion.version,
               "champion_metrics": champion.metrics}
    write_verdict(verdict_path, verdict.blessed, verdict.reason, blessing=payload)
    markdown = (f"Policy: {BlessingPolicy.coerce(spec, task).describe()} (`{spec}`)\n\n"
                f"{verdict.to_markdown()}")
    return GateDecision(verdict.blessed, verdict.reason, spec, markdown)
