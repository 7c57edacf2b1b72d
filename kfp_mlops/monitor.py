"""Monitoring: a current batch against the production model's reference dataset version.

Data quality (the stored schema), drift (per feature and dataset-level), and model
performance on the rows that carry labels. The result says whether to retrain, and why.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_mlops.data.drift import DriftThresholds, detect_drift
from kfp_mlops.data.report import html_report, markdown_summary
from kfp_mlops.data.schema import SchemaNotFoundError, load_schema
from kfp_mlops.data.sources import load_table, read_parquet
from kfp_mlops.data.stats import compute_statistics_from_frame
from kfp_mlops.data.validation import ValidationThresholds, validate
from kfp_mlops.data.versions import download_dataset
from kfp_mlops.errors import DataError
from kfp_mlops.model.evaluate import evaluate_model
from kfp_mlops.model.package import load_model_folder
from kfp_mlops.model.registry import Registry, RegistryError
from kfp_mlops.storage import open_store


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

    def metrics(self) -> dict[str, float]:
        """Scalars for a KFP ``Metrics`` artifact and the Prometheus drift gauges."""
        out = {
            "drift_share": self.drift_share,
            "dataset_drift": float(self.dataset_drift),
            "drifted_features": float(len(self.drifted_features)),
            "labelled_rows": float(self.labelled_rows),
        }
        out.update({f"current_{k}": v for k, v in self.performance.items()})
        return out


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
    """Compare ``current_source`` with the data ``model_name@production`` was trained on."""
    current = load_table(current_source)
    if current.empty:
        raise DataError(f"the monitoring batch {current_source!r} has no rows")
    store = open_store(store_uri)
    registry = Registry(store)
    try:
        production = registry.get(f"{model_name}@production")
    except RegistryError:
        return MonitorResult(
            retrain=True,
            reason=f"no production version of {model_name!r} yet: train the first one",
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder, metadata = registry.download(production.ref, Path(tmp) / "model")
        if not metadata.dataset_version:
            raise DataError(
                f"{production.ref} records no dataset version, so there is no reference to "
                "compare with; retrain it with this version of kfp-mlops"
            )
        missing = [f for f in metadata.feature_names if f not in current.columns]
        if missing:
            raise DataError(
                f"the monitoring batch lacks the model's features {missing}; its columns are "
                f"{list(current.columns)}. Send batches with the training schema"
            )
        reference = read_parquet(
            download_dataset(store, metadata.dataset_version, Path(tmp) / "reference.parquet")
        )
        columns = [c for c in [*metadata.feature_names, metadata.target]
                   if c in current.columns and c in reference.columns]
        # The target's drift counts in the share (label shift is a reason to retrain) and
        # the reason says so; the report marks it as the target.
        drift = detect_drift(reference[columns], current[columns],
                             DriftThresholds(drift_share=drift_share),
                             target=metadata.target, count_target=True)
        stats = compute_statistics_from_frame(current)
        try:
            schema = load_schema(store, model_name)
            quality = validate(stats, schema, ValidationThresholds())
        except SchemaNotFoundError:  # no schema stored: no quality check (an outage raises)
            quality = None
        labelled = current[current[metadata.target].notna()] if metadata.target in current else None
        performance: dict[str, Any] = {}
        if labelled is not None and len(labelled):
            model, _ = load_model_folder(folder)
            performance = evaluate_model(model, metadata, labelled).metrics
    reasons = [drift.reason]
    if quality is not None and not quality.passed:
        reasons.append(f"data quality: {quality.reason}")
    if force:
        reasons.append("retraining forced")
    result = MonitorResult(
        retrain=drift.dataset_drift or force,
        reason="; ".join(reasons),
        dataset_drift=drift.dataset_drift,
        drift_share=drift.drift_share,
        drifted_features=drift.drifted_features,
        reference_version=metadata.dataset_version,
        model_ref=production.ref,
        labelled_rows=0 if labelled is None else len(labelled),
        performance=performance,
        quality_passed=quality is None or quality.passed,
        quality_reason="" if quality is None else quality.reason,
    )
    if report_path:
        Path(report_path).write_text(html_report(
            stats, drift=drift, validation=quality,
            title=f"Monitoring {model_name}: batch vs dataset {metadata.dataset_version}",
            reference_name=f"dataset {metadata.dataset_version}", current_name="this batch",
        ))
    if summary_path:
        text = markdown_summary(stats, validation=quality, drift=drift)
        if performance:
            text += "\n\n**Performance on labelled rows** ({} of {}): {}\n".format(
                result.labelled_rows, len(current),
                ", ".join(f"{k} {v:.4f}" for k, v in performance.items()),
            )
        Path(summary_path).write_text(text)
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
