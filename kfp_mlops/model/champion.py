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
    from kfp_mlops.model.steps import evaluate_step

    with tempfile.TemporaryDirectory() as tmp:
        folder, _ = registry.download(production.ref, Path(tmp) / "champion")
        try:
            evaluation, _ = evaluate_step(folder, test_path)
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
