"""Monitoring: a current batch against the production model's reference dataset version.

Data quality (the stored schema), drift (per feature and dataset-level), and model
performance on the rows that carry labels. The result says whether to retrain, and why.

The logic is pure functions of tables, statistics and model objects
(:func:`drift_against_reference`, :func:`performance`, :func:`decide`,
:func:`report_html`, :func:`summary_markdown`); reading the store, downloading the model
and writing files sit in the thin edge functions below them, which the pipeline's
``detect-drift`` and ``monitor`` tasks call.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_mlops.data.drift import DriftResult, DriftThresholds, detect_drift, drift_from_scans
from kfp_mlops.data.gate import validate_against_store
from kfp_mlops.data.report import html_report, markdown_summary
from kfp_mlops.data.sources import load_table, read_parquet
from kfp_mlops.data.stats import DatasetStatistics, Scan, compute_statistics_from_frame, scan_any
from kfp_mlops.data.validation import ValidationResult
from kfp_mlops.data.versions import download_dataset
from kfp_mlops.errors import DataError
from kfp_mlops.model.evaluate import evaluate_model
from kfp_mlops.model.package import ModelMetadata, load_model_folder
from kfp_mlops.model.registry import Registry, RegistryError
from kfp_mlops.storage import open_store

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

    def metrics(self) -> dict[str, float]:
        """Scalars for a KFP ``Metrics`` artifact and the Prometheus drift gauges."""
        out = {
            "drift_share": self.drift_share,
            "dataset_drift": float(self.dataset_drift),
            "drifted_features": float(len(self.drifted_features)),
            "labelled_rows": float(self.labelled_rows),
        }
        out.update({f"current_{k}": v for k, v in self.performance.items()})
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

    The batch is a prediction log window (:mod:`kfp_mlops.data.logged`): its
    ``_prediction`` column holds what production answered. A model answering with another
    class mix (or value range) than it was trained on is the first sign of trouble, days
    before any label arrives. Only the rows ``version`` answered are compared (the
    reference is that version's training data); None when it answered none.
    """
    from kfp_mlops.data.logged import MODEL_VERSION, PREDICTION

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


def decide(
    reference: ReferenceDrift,
    quality: ValidationResult | None,
    *,
    labelled: int = 0,
    metrics: dict[str, float] | None = None,
    force: bool = False,
) -> MonitorResult:
    """Retrain on dataset drift or when forced; the reason lists drift, quality and force."""
    drift = reference.drift
    if drift is None:
        return no_production(reference.model_name)
    if reference.logged_rows is not None:
        quality = _labels_pending(quality, reference.target)
    reasons = [drift.reason]
    if reference.logged_rows is not None:
        reasons.append(f"prediction log: {reference.logged_rows} rows, {labelled} labelled")
    if reference.prediction_drift is not None:
        found = reference.prediction_drift
        reasons.append(
            f"prediction drift: {'yes' if found['drifted'] else 'no'} ({found['test']} "
            f"{found['score']:.3f}, threshold {found['threshold']:g}, on the "
            f"{found['rows']} rows version {found.get('version') or '?'} answered)")
    if quality is not None and not quality.passed:
        reasons.append(f"data quality: {quality.reason}")
    if force:
        reasons.append("retraining forced")
    return MonitorResult(
        retrain=drift.dataset_drift or force,
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
    )


def _labels_pending(
    quality: ValidationResult | None, target: str | None,
) -> ValidationResult | None:
    """On a prediction log window, an empty target is a label not in yet, not bad data.

    The schema (inferred from complete training data) says the target is never null;
    the log's unlabelled rows would fail that check every time. That anomaly is kept as
    a warning; the others stand.
    """
    from dataclasses import replace

    from kfp_mlops.data.validation import WARNING

    if quality is None or target is None:
        return quality
    anomalies = [
        replace(a, severity=WARNING, fix="labels not in yet: kfp-mlops labels add")
        if a.column == target and a.kind in ("unexpected_nulls", "all_null") else a
        for a in quality.anomalies
    ]
    if anomalies == quality.anomalies:
        return quality
    errors = [a for a in anomalies if a.severity != WARNING]
    reason = quality.reason if errors else "data matches schema (the unlabelled rows' " \
        "target is empty: labels not in yet)"
    return ValidationResult(not errors, anomalies, reason)


def report_html(
    stats: DatasetStatistics, reference: ReferenceDrift, quality: ValidationResult | None,
    result: MonitorResult | None = None,
) -> str:
    """The monitoring report: quality, drift table, reference-vs-current overlays.

    On a prediction log window the title and every section name the window's rows and
    how many carry a label, and the title says whether the predictions drifted.
    """
    what, current = "batch", "this batch"
    if reference.logged_rows is not None:
        labelled = result.labelled_rows if result is not None else 0
        what = "prediction log"
        current = f"the prediction log: {reference.logged_rows} rows, {labelled} labelled"
        if reference.prediction_drift is not None:
            found = reference.prediction_drift
            current += (f"; predictions {'drifted' if found['drifted'] else 'did not drift'}"
                        f" from the training labels ({found['test']} {found['score']:.3f})")
    return html_report(
        stats, drift=reference.drift, validation=quality,
        title=f"Monitoring {reference.model_name}: {what} vs dataset "
              f"{reference.reference_version}",
        reference_name=f"dataset {reference.reference_version}", current_name=current,
    )


def summary_markdown(
    stats: DatasetStatistics, reference: ReferenceDrift, quality: ValidationResult | None,
    result: MonitorResult, rows: int,
) -> str:
    """The monitoring summary in Markdown, with performance on labelled rows if any."""
    text = markdown_summary(stats, validation=quality, drift=reference.drift)
    if result.performance:
        text += "\n\n**Performance on labelled rows** ({} of {}): {}\n".format(
            result.labelled_rows, rows,
            ", ".join(f"{k} {v:.4f}" for k, v in result.performance.items()),
        )
    if result.logged_rows is not None:
        text += (f"\n\n**Prediction log**: {result.logged_rows} rows served, "
                 f"{result.labelled_rows} of them labelled so far.\n")
    if result.prediction_drift is not None:
        found = result.prediction_drift
        text += (f"\n**Prediction drift** (logged predictions vs training labels): "
                 f"{'drifted' if found['drifted'] else 'no drift'}, {found['test']} "
                 f"{found['score']:.4f} (threshold {found['threshold']:g}).\n")
    return text


# ---------------------------------------------------------------- edges (I/O)


def load_batch(source: str) -> pd.DataFrame:
    """The monitoring batch, whole (refused when empty)."""
    current = load_table(source)
    if current.empty:
        raise DataError(f"the monitoring batch {source!r} has no rows")
    return current


def reference_drift(
    store_uri: str, model_name: str, current: pd.DataFrame | Scan, *, drift_share: float = 0.5
) -> ReferenceDrift:
    """Drift of ``current`` from the dataset version ``model_name@production`` was trained on."""
    store = open_store(store_uri)
    try:
        production = Registry(store).get(f"{model_name}@production")
    except RegistryError:
        return ReferenceDrift(model_name)
    metadata = production.metadata
    if not metadata.dataset_version:
        raise DataError(
            f"{production.ref} records no dataset version, so there is no reference to "
            "compare with; retrain it with this version of kfp-mlops"
        )
    with tempfile.TemporaryDirectory() as tmp:
        reference = read_parquet(
            download_dataset(store, metadata.dataset_version, Path(tmp) / "reference.parquet")
        )
    drift = drift_against_reference(reference, current, metadata, drift_share)
    from kfp_mlops.data.logged import PREDICTION

    logged = predicted = None
    if not isinstance(current, Scan) and PREDICTION in current.columns:  # a log window
        logged = len(current)
        predicted = prediction_drift(reference, current, metadata.target, drift_share,
                                     metadata.version)
    return ReferenceDrift(model_name, production.ref, metadata.dataset_version,
                          metadata.target, drift, logged, predicted)


def write_reference_drift(
    store_uri: str, model_name: str, current: pd.DataFrame | Scan, path: str | Path, *,
    drift_share: float = 0.5,
) -> tuple[ReferenceDrift, bool, str]:
    """What the ``detect-drift`` steps do: the drift, written as JSON to ``path``.

    Returns it with the dataset-drift decision and its reason.
    """
    found = reference_drift(store_uri, model_name, current, drift_share=drift_share)
    Path(path).write_text(found.to_json())
    drifted = found.drift is not None and found.drift.dataset_drift
    reason = found.drift.reason if found.drift else no_production(model_name).reason
    return found, drifted, reason


def quality_against_store(
    store_uri: str, model_name: str, stats: DatasetStatistics
) -> ValidationResult | None:
    """The batch checked against the stored schema; None when no schema is stored."""
    checked = validate_against_store(stats, store_uri, model_name, check_only=True)
    return checked.validation


def model_performance(
    store_uri: str, reference: ReferenceDrift, current: pd.DataFrame
) -> tuple[int, dict[str, float]]:
    """(labelled rows, metrics) of the reference model version on the batch's labelled rows.

    The version is downloaded (and its sha256 checked) even when no row has a label.
    """
    if reference.model_ref is None:
        return 0, {}
    labelled = labelled_rows(current, reference.target)
    with tempfile.TemporaryDirectory() as tmp:
        folder, metadata = Registry(open_store(store_uri)).download(
            reference.model_ref, Path(tmp) / "model")
        model = load_model_folder(folder)[0] if labelled is not None and len(labelled) else None
        return 0 if labelled is None else len(labelled), performance(model, metadata, labelled)


def write_reports(
    stats: DatasetStatistics, reference: ReferenceDrift, quality: ValidationResult | None,
    result: MonitorResult, rows: int, report_path: str | Path | None,
    summary_path: str | Path | None,
) -> None:
    """Write the HTML report and the Markdown summary (nothing without a reference)."""
    if reference.drift is None:
        return
    if reference.logged_rows is not None:
        quality = _labels_pending(quality, reference.target)
    if report_path:
        Path(report_path).write_text(report_html(stats, reference, quality, result))
    if summary_path:
        Path(summary_path).write_text(summary_markdown(stats, reference, quality, result, rows))


def monitor_batch(
    store_uri: str,
    model_name: str,
    current_source: str,
    *,
    drift_share: float = 0.5,
    force: bool = False,
    report_path: str | Path | None = None,
    summary_path: str | Path | None = None,
) -> MonitorResult:
    """Compare ``current_source`` with the data ``model_name@production`` was trained on.

    The monitoring pipeline runs the same steps as separate tasks (ingest,
    compute-statistics, validate-data, detect-drift, monitor); this is them in one call.
    """
    current = load_batch(current_source)
    reference = reference_drift(store_uri, model_name, current, drift_share=drift_share)
    if reference.drift is None:
        return no_production(model_name)
    stats = compute_statistics_from_frame(current)
    quality = quality_against_store(store_uri, model_name, stats)
    labelled, metrics = model_performance(store_uri, reference, current)
    result = decide(reference, quality, labelled=labelled, metrics=metrics, force=force)
    write_reports(stats, reference, quality, result, len(current), report_path, summary_path)
    return result


def push_drift_gauges(gateway: str, model_name: str, result: MonitorResult) -> None:
    """Publish the drift gauges the alert rules read to a Prometheus Pushgateway."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    Gauge("kfp_mlops_drift_share", "Share of drifted features in the last monitored batch",
          ["model"], registry=registry).labels(model_name).set(result.drift_share)
    Gauge("kfp_mlops_dataset_drift", "1 when the last monitored batch drifted",
          ["model"], registry=registry).labels(model_name).set(float(result.dataset_drift))
    push_to_gateway(gateway, job="kfp-mlops-monitoring", registry=registry)
