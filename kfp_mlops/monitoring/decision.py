"""Monitoring's decision: a current batch against the production model's reference data.

Data quality (the stored schema), drift (per feature and dataset-level), and model
quality: estimated on every row without labels (CBPE for classifiers, DLE for
regressors: :mod:`kfp_mlops.model.estimate`), realized on the rows that carry labels.
The result says whether to retrain, and why, in one line a person reads
(:attr:`MonitorResult.headline`).

A batch without its target is the normal case (labels pending), not a failure. Once
labels arrive (at least half the rows, and 30) the realized metric replaces the
estimate in the decision; the report shows both.

The logic here is pure functions of tables, statistics and model objects
(:func:`drift_against_reference`, :func:`performance`, :func:`decide`); the report that
shows it is :mod:`kfp_mlops.monitoring.report`, and reading the store, downloading the
model and writing files sit in the thin edges of :mod:`kfp_mlops.monitoring.steps`,
which the pipeline's ``detect-drift`` and ``monitor`` tasks call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kfp_mlops.data.drift import DriftResult, DriftThresholds, detect_drift, drift_from_scans
from kfp_mlops.data.stats import Scan, scan_any
from kfp_mlops.data.validation import ValidationResult, labels_pending
from kfp_mlops.errors import DataError
from kfp_mlops.model.estimate import LOWER_IS_BETTER, PRIMARY, Estimate, drop
from kfp_mlops.model.evaluate import evaluate_model
from kfp_mlops.model.package import ModelMetadata

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class MonitorResult:
    """The decision (``retrain``), its reason, and the figures behind it."""

    retrain: bool
    reason: str
    dataset_drift: bool = False
    drift_share: float = 0.0
    drifted_features: list[str] = field(default_factory=list)
    reference_version: str | None = None
    model_ref: str | None = None
    labelled_rows: int = 0
    performance: dict[str, float] = field(default_factory=dict)
    quality_passed: bool = True
    quality_reason: str = ""
    logged_rows: int | None = None  # the batch is a prediction log window of this many rows
    prediction_drift: dict[str, Any] | None = None  # logged predictions vs training labels
    rows: int = 0
    estimate: dict[str, Any] | None = None  # Estimate.to_dict(): metrics without labels
    reference_metrics: dict[str, float] = field(default_factory=dict)  # the version's test
    model_version: int | None = None
    primary_metric: str | None = None  # what the headline and --estimated-drop read
    quality_source: str | None = None  # "estimated" or "realized": what the decision read
    quality_drop: float | None = None  # how much worse than the version's test score
    estimated_drop: float | None = None  # the threshold (None: quality does not decide)
    quality_dropped: bool = False
    forced: bool = False

    @property
    def estimated(self) -> Estimate | None:
        """The estimate as an :class:`Estimate` (None without a production version)."""
        return Estimate.from_dict(self.estimate)

    def quality_line(self) -> str:
        """``estimated accuracy 0.91 +/- 0.02; realized accuracy 0.90 on 120 labelled rows``."""
        metric = self.primary_metric
        if metric is None:
            return ""
        parts = []
        estimate = self.estimated
        if estimate is not None:
            parts.append(estimate.describe(metric))
        if metric in self.performance:
            parts.append(f"realized {metric} {self.performance[metric]:.3g} on "
                         f"{self.labelled_rows} labelled rows")
        elif self.rows:
            parts.append("labels pending")
        if metric in self.reference_metrics:
            parts.append(f"version {self.model_version or '?'} scored "
                         f"{self.reference_metrics[metric]:.3g} on its test rows")
        return "; ".join(parts)

    @property
    def headline(self) -> str:
        """What happened, in one line: ``kept production version 3: no drift, ...``."""
        if self.model_ref is None:
            return self.reason
        why = []
        if self.dataset_drift:
            why.append(f"dataset drift ({len(self.drifted_features)} columns: "
                       f"{', '.join(self.drifted_features[:5])}"
                       f"{', ...' if len(self.drifted_features) > 5 else ''})")
        else:
            why.append("no drift" if not self.drifted_features else
                       f"no dataset drift ({len(self.drifted_features)} columns moved)")
        metric = self.primary_metric
        estimate = self.estimated
        if metric is not None:
            if self.quality_source == "realized":
                why.append(f"realized {metric} {self.performance[metric]:.3g} on "
                           f"{self.labelled_rows} labelled rows")
            elif estimate is not None:
                why.append(estimate.describe(metric))
            if self.quality_dropped and self.quality_drop is not None:
                unit = f"{self.quality_drop:.0%} worse" if metric in LOWER_IS_BETTER else \
                    f"{self.quality_drop:.3g} lower"
                why.append(f"{unit} than on its test rows (threshold {self.estimated_drop:g})")
        if self.forced:
            why.append("retraining forced")
        version = f"production version {self.model_version}" if self.model_version else \
            self.model_ref
        verb = f"retrain (replacing {version})" if self.retrain else f"kept {version}"
        return f"{verb}: {', '.join(why)}"

    def metrics(self) -> dict[str, float]:
        """Scalars for a KFP ``Metrics`` artifact and the Prometheus drift gauges."""
        out = {
            "drift_share": self.drift_share,
            "dataset_drift": float(self.dataset_drift),
            "drifted_features": float(len(self.drifted_features)),
            "labelled_rows": float(self.labelled_rows),
        }
        out.update({f"current_{k}": v for k, v in self.performance.items()})
        estimate = self.estimated
        if estimate is not None:
            out.update({f"estimated_{k}": v for k, v in estimate.metrics.items()})
            out.update({f"estimated_{k}_band": v for k, v in estimate.band.items()})
        if self.quality_drop is not None:
            out["quality_drop"] = float(self.quality_drop)
        if self.prediction_drift is not None:
            out["prediction_drift_score"] = float(self.prediction_drift["score"])
            out["prediction_drift"] = float(self.prediction_drift["drifted"])
        return out


@dataclass
class ReferenceDrift:
    """The batch's drift against the production model's training data (or no model yet).

    What the ``detect-drift`` step hands to the ``monitor`` step: which production
    version and dataset version were the reference, and the drift result.
    """

    model_name: str
    model_ref: str | None = None  # None: no production version yet
    reference_version: str | None = None
    target: str | None = None
    drift: DriftResult | None = None
    logged_rows: int | None = None  # set when the batch is a prediction log window
    prediction_drift: dict[str, Any] | None = None

    def to_json(self) -> str:
        """JSON for a KFP artifact."""
        return json.dumps({
            "model_name": self.model_name, "model_ref": self.model_ref,
            "reference_version": self.reference_version, "target": self.target,
            "drift": json.loads(self.drift.to_json()) if self.drift else None,
            "logged_rows": self.logged_rows, "prediction_drift": self.prediction_drift,
        })

    @classmethod
    def from_json(cls, text: str) -> ReferenceDrift:
        """Rebuild from :meth:`to_json` output."""
        data = json.loads(text)
        drift = data.pop("drift")
        return cls(**data, drift=DriftResult.from_json(json.dumps(drift)) if drift else None)


# ---------------------------------------------------------------- pure steps


def drift_against_reference(
    reference: pd.DataFrame, current: pd.DataFrame | Scan, metadata: ModelMetadata,
    drift_share: float,
) -> DriftResult:
    """Drift of the model's features and target from ``reference`` to ``current``.

    ``current`` is the batch, or its finished scan (a sharded batch's merged scan).
    """
    names = list(current.stats.columns) if isinstance(current, Scan) else list(current.columns)
    missing = [f for f in metadata.feature_names if f not in names]
    if missing:
        raise DataError(
            f"the monitoring batch lacks the model's features {missing}; its columns are "
            f"{names}. Send batches with the training schema"
        )
    columns = [c for c in [*metadata.feature_names, metadata.target]
               if c in names and c in reference.columns]
    thresholds = DriftThresholds(drift_share=drift_share)
    # The target's drift counts in the share (label shift is a reason to retrain) and
    # the reason says so; the report marks it as the target.
    if isinstance(current, Scan):
        ref = scan_any(reference[columns], sample_size=thresholds.sample_size,
                       count_duplicates=False)
        return drift_from_scans(ref, current, thresholds, columns,
                                target=metadata.target, count_target=True)
    return detect_drift(reference[columns], current[columns], thresholds,
                        target=metadata.target, count_target=True)


def prediction_drift(
    reference: pd.DataFrame, current: pd.DataFrame, target: str, drift_share: float,
    version: int | str | None = None,
) -> dict[str, Any] | None:
    """Drift of the logged predictions from the training data's labels (None: nothing to test).

    The batch is a prediction log window (:mod:`kfp_mlops.live.logged`): its
    ``_prediction`` column holds what production answered. A model answering with another
    class mix (or value range) than it was trained on is the first sign of trouble, days
    before any label arrives. Only the rows ``version`` answered are compared (the
    reference is that version's training data); None when it answered none.
    """
    from kfp_mlops.data.log_columns import MODEL_VERSION, PREDICTION

    if PREDICTION not in current.columns or target not in reference.columns:
        return None
    if version is not None and MODEL_VERSION in current.columns:
        current = current[current[MODEL_VERSION].astype(str) == str(version)]
    answered = current[[PREDICTION]].dropna().rename(columns={PREDICTION: target})
    if answered.empty:
        return None
    expected = reference[[target]].dropna()
    if pd_kind(expected[target]) != pd_kind(answered[target]):
        answered[target] = answered[target].astype(expected[target].dtype, errors="ignore")
    found = detect_drift(expected, answered, DriftThresholds(drift_share=drift_share))
    if not found.features:
        return None
    column = found.features[0]
    return {"test": column.test, "score": float(column.score),
            "threshold": float(column.threshold), "drifted": bool(column.drifted),
            "rows": len(answered), "version": None if version is None else str(version)}


def pd_kind(series: Any) -> str:
    """``number`` or ``other``: whether a column holds numbers."""
    import pandas as pd

    return "number" if pd.api.types.is_numeric_dtype(series) else "other"


def labelled_rows(current: pd.DataFrame, target: str | None) -> pd.DataFrame | None:
    """The batch's rows that carry a label (None when the batch has no target column)."""
    return current[current[target].notna()] if target in current else None


def performance(
    model: Any, metadata: ModelMetadata, labelled: pd.DataFrame | None
) -> dict[str, float]:
    """The model's metrics on the labelled rows (empty without any)."""
    if labelled is None or not len(labelled):
        return {}
    return evaluate_model(model, metadata, labelled).metrics


def no_production(model_name: str) -> MonitorResult:
    """The decision when there is nothing to compare with: train the first version."""
    return MonitorResult(
        retrain=True, reason=f"no production version of {model_name!r} yet: train the first one",
    )


@dataclass
class ModelQuality:
    """The production version's quality on a batch: estimated, and realized where labelled."""

    labelled: int = 0
    realized: dict[str, float] = field(default_factory=dict)
    estimate: Estimate | None = None
    reference: dict[str, float] = field(default_factory=dict)  # its held-out test metrics
    version: int | None = None
    task: str | None = None
    rows: int = 0


# Realized metrics replace the estimate in the decision once this many rows, and at least
# REALIZED_MIN_SHARE of the batch, carry labels (fewer: the estimate on every row decides).
REALIZED_MIN_ROWS = 30
REALIZED_MIN_SHARE = 0.5


def decide(
    reference: ReferenceDrift,
    quality: ValidationResult | None,
    *,
    labelled: int = 0,
    metrics: dict[str, float] | None = None,
    force: bool = False,
    model: ModelQuality | None = None,
    estimated_drop: float | None = None,
) -> MonitorResult:
    """Retrain on dataset drift, on a quality drop past ``estimated_drop``, or when forced.

    ``model`` (from :func:`model_quality`) holds the estimate and the realized metrics;
    the decision reads the realized primary metric (accuracy, or MAE) once labels cover
    the batch (:data:`REALIZED_MIN_ROWS`, :data:`REALIZED_MIN_SHARE`), the estimate
    before. A drop is measured against the version's own score on its held-out test
    rows (:func:`kfp_mlops.model.estimate.drop`). The reason lists drift, model
    quality, data quality and force.
    """
    drift = reference.drift
    if drift is None:
        return no_production(reference.model_name)
    if model is not None:
        labelled, metrics = model.labelled, model.realized
    quality = labels_pending(quality, reference.target)
    reasons = [drift.reason]
    if reference.logged_rows is not None:
        reasons.append(f"prediction log: {reference.logged_rows} rows, {labelled} labelled")
    if reference.prediction_drift is not None:
        found = reference.prediction_drift
        reasons.append(
            f"prediction drift: {'yes' if found['drifted'] else 'no'} ({found['test']} "
            f"{found['score']:.3f}, threshold {found['threshold']:g}, on the "
            f"{found['rows']} rows version {found.get('version') or '?'} answered)")
    primary = source = dropped_by = None
    dropped = False
    if model is not None and model.task in PRIMARY:
        primary = PRIMARY[model.task]
        value = None
        enough = labelled >= max(REALIZED_MIN_ROWS, REALIZED_MIN_SHARE * model.rows)
        if primary in (metrics or {}) and enough:
            source, value = "realized", (metrics or {})[primary]
        elif model.estimate is not None and primary in model.estimate.metrics:
            source, value = "estimated", model.estimate.metrics[primary]
        if value is not None and primary in model.reference:
            dropped_by = drop(primary, model.reference[primary], value)
            dropped = estimated_drop is not None and dropped_by >= estimated_drop
        reasons.append(_quality_reason(model, primary, source, dropped_by, estimated_drop,
                                       labelled, metrics or {}))
    if quality is not None and not quality.passed:
        reasons.append(f"data quality: {quality.reason}")
    if force:
        reasons.append("retraining forced")
    return MonitorResult(
        retrain=drift.dataset_drift or force or dropped,
        reason="; ".join(reasons),
        dataset_drift=drift.dataset_drift,
        drift_share=drift.drift_share,
        drifted_features=drift.drifted_features,
        reference_version=reference.reference_version,
        model_ref=reference.model_ref,
        labelled_rows=labelled,
        performance=metrics or {},
        quality_passed=quality is None or quality.passed,
        quality_reason="" if quality is None else quality.reason,
        logged_rows=reference.logged_rows,
        prediction_drift=reference.prediction_drift,
        rows=model.rows if model is not None else 0,
        estimate=model.estimate.to_dict() if model is not None and model.estimate else None,
        reference_metrics=model.reference if model is not None else {},
        model_version=model.version if model is not None else None,
        primary_metric=primary, quality_source=source, quality_drop=dropped_by,
        estimated_drop=estimated_drop, quality_dropped=dropped, forced=force,
    )


def _quality_reason(model: ModelQuality, primary: str, source: str | None,
                    dropped_by: float | None, threshold: float | None, labelled: int,
                    realized: dict[str, float]) -> str:
    estimate = model.estimate
    parts = [estimate.describe(primary) if estimate is not None else "no estimate"]
    if primary in realized:
        parts.append(f"realized {primary} {realized[primary]:.4g} on {labelled} labelled rows")
    line = "model quality: " + ", ".join(parts)
    if source is None:
        return line
    if primary in model.reference:
        line += (f"; the {source} {primary} against version {model.version or '?'}'s "
                 f"{model.reference[primary]:.4g} on its test rows: drop {dropped_by:.3g}")
        if threshold is not None:
            line += f" ({'at or above' if dropped_by >= threshold else 'below'} the " \
                    f"threshold {threshold:g})"
    return line
