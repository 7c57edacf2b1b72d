"""The absolute quality gate. No scikit-learn import: the gate task starts fast."""

from __future__ import annotations

from dataclasses import dataclass

from kfp_mlops.errors import DataError

# The metric each task is judged on when the user names none.
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}
# Default bars: clearly better than guessing on typical tabular data, low enough that a
# first model on a small bundled data set passes. Teams should set their own.
DEFAULT_THRESHOLD = {"classification": 0.7, "regression": 0.2}
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


@dataclass(frozen=True)
class GateResult:
    """A gate's decision and the sentence that explains it."""

    passed: bool
    reason: str


def quality_gate(
    metrics: dict[str, float], task: str, metric: str | None = None,
    threshold: float | str | None = None,
) -> GateResult:
    """Pass when ``metric`` meets ``threshold`` in its better direction.

    ``None`` or ``"auto"`` picks the per-task defaults (:data:`DEFAULT_METRIC`,
    :data:`DEFAULT_THRESHOLD`).
    """
    if metric in (None, "", "auto"):
        metric = DEFAULT_METRIC[task]
    if threshold in (None, "", "auto"):
        threshold = DEFAULT_THRESHOLD[task] if metric == DEFAULT_METRIC[task] else None
        if threshold is None:
            raise DataError(f"give a quality threshold for metric {metric!r} (e.g. 0.8)")
    try:
        threshold = float(threshold)
    except ValueError:
        raise DataError(f"quality threshold {threshold!r} is not a number; use e.g. 0.8") from None
    if metric not in metrics:
        raise DataError(
            f"quality metric {metric!r} was not computed for {task}; available: "
            f"{', '.join(sorted(metrics))}"
        )
    value = metrics[metric]
    if metric in LOWER_IS_BETTER:
        passed, relation = value <= threshold, "<="
    else:
        passed, relation = value >= threshold, ">="
    verdict = "passed" if passed else "failed"
    return GateResult(
        passed=bool(passed),
        reason=f"quality gate {verdict}: {metric} = {value:.4f}, required {relation} {threshold:g}",
    )
