"""The model gate: absolute quality plus champion/challenger, as one blessing policy.

The CLI's ``--quality-metric``/``--quality-threshold`` become the policy's one rule
(``accuracy>=0.7~0.01``: meet 0.7 and be at most 0.01 worse than the champion); a full
policy string (see :mod:`kfp_mlops.model.blessing`) replaces them.
"""

from __future__ import annotations

from kfp_mlops.errors import DataError

# The metric each task is judged on when the user names none.
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}
# Default bars: clearly better than guessing on typical tabular data, low enough that a
# first model on a small bundled data set passes. Teams should set their own.
DEFAULT_THRESHOLD = {"classification": 0.7, "regression": 0.2}
# How much worse than the production model a challenger may be (metric units).
DEFAULT_TOLERANCE = 0.01
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


def policy_spec(
    task: str, metric: str | None = None, threshold: float | str | None = None,
    policy: str | None = None,
) -> str:
    """The blessing policy string for a run: ``policy`` if given, else one metric rule.

    ``None``, ``""`` or ``"auto"`` pick the per-task defaults.
    """
    if policy not in (None, "", "auto"):
        return str(policy)
    if metric in (None, "", "auto"):
        metric = DEFAULT_METRIC[task]
    if threshold in (None, "", "auto"):
        if metric != DEFAULT_METRIC[task]:
            raise DataError(f"give a quality threshold for metric {metric!r} (e.g. 0.8)")
        threshold = DEFAULT_THRESHOLD[task]
    try:
        value = float(threshold)  # type: ignore[arg-type]
    except ValueError:
        raise DataError(f"quality threshold {threshold!r} is not a number; use e.g. 0.8") from None
    op = "<=" if metric in LOWER_IS_BETTER else ">="
    return f"{metric}{op}{value:g}~{DEFAULT_TOLERANCE:g}"
