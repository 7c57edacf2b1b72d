"""What each monitoring component calls: one function per component, named after it.

``components/monitoring/*.py``'s component ``X`` calls :func:`X` here with the artifacts'
paths and its parameters; the component only adds KFP's metadata, metrics and outputs.
The decision itself is pure (:mod:`kfp_mlops.monitoring.decision`); reading the store,
downloading the model and writing files sit here, in the edges.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kfp_mlops.data.sources import read_parquet
from kfp_mlops.data.stats import DatasetStatistics, Scan
from kfp_mlops.data.validation import ValidationResult
from kfp_mlops.data.versions import download_dataset
from kfp_mlops.errors import DataError
from kfp_mlops.model.package import load_model_folder
from kfp_mlops.model.registry import Registry, RegistryError
from kfp_mlops.monitoring.decision import (
    ModelQuality,
    MonitorResult,
    ReferenceDrift,
    decide,
    drift_against_reference,
    labelled_rows,
    no_production,
    performance,
    prediction_drift,
)
from kfp_mlops.monitoring.gauges import push_drift_gauges
from kfp_mlops.monitoring.report import write_reports
from kfp_mlops.storage import open_store

if TYPE_CHECKING:
    import pandas as pd


def detect_drift(dataset_path: str | Path, store_uri: str, model_name: str,
                 drift_path: str | Path, drift_share: float = 0.5
                 ) -> tuple[ReferenceDrift, bool, str]:
    """Drift of the batch's rows from the data ``model_name@production`` was trained on.

    Written as JSON to ``drift_path``; returned with the dataset-drift decision and its
    reason (without a production version: no reference, no drift).
    """
    return _write_drift(store_uri, model_name, read_parquet(dataset_path), drift_path,
                        drift_share)


def detect_drift_sharded(scan_path: str | Path, store_uri: str, model_name: str,
                         drift_path: str | Path, drift_share: float = 0.5
                         ) -> tuple[ReferenceDrift, bool, str]:
    """:func:`detect_drift` for a sharded batch: from its merged scan, not its rows."""
    from kfp_mlops.data.shard_stats import load_scan

    return _write_drift(store_uri, model_name, load_scan(scan_path), drift_path, drift_share)


def monitor(dataset_path: str | Path, statistics_path: str | Path,
            validation_path: str | Path, drift_path: str | Path, store_uri: str,
            report_path: str | Path, summary_path: str | Path, *, force: bool = False,
            estimated_drop: float | None = None, pushgateway: str = "") -> MonitorResult:
    """Decide to retrain from the batch's drift, the model's quality and data quality.

    Estimates the quality of the production version ``detect-drift`` compared with on
    every row, scores it on the rows that carry labels, writes the report and summary,
    and pushes the gauges to ``pushgateway`` when one is given.
    """
    reference = ReferenceDrift.from_json(Path(drift_path).read_text())
    checked = json.loads(Path(validation_path).read_text())["validation"]
    quality = ValidationResult.from_dict(checked) if checked else None
    current = read_parquet(dataset_path)
    found = model_quality(store_uri, reference, current)
    result = decide(reference, quality, model=found, force=force,
                    estimated_drop=estimated_drop)
    stats = DatasetStatistics.from_json(Path(statistics_path).read_text())
    write_reports(stats, reference, quality, result, stats.rows, report_path, summary_path)
    if pushgateway:
        push_drift_gauges(pushgateway, reference.model_name, result)
    return result


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
    from kfp_mlops.data.log_columns import PREDICTION

    logged = predicted = None
    if not isinstance(current, Scan) and PREDICTION in current.columns:  # a log window
        logged = len(current)
        predicted = prediction_drift(reference, current, metadata.target, drift_share,
                                     metadata.version)
    return ReferenceDrift(model_name, production.ref, metadata.dataset_version,
                          metadata.target, drift, logged, predicted)


def _write_drift(store_uri: str, model_name: str, current: pd.DataFrame | Scan,
                 path: str | Path, drift_share: float) -> tuple[ReferenceDrift, bool, str]:
    found = reference_drift(store_uri, model_name, current, drift_share=drift_share)
    Path(path).write_text(found.to_json())
    drifted = found.drift is not None and found.drift.dataset_drift
    reason = found.drift.reason if found.drift else no_production(model_name).reason
    return found, drifted, reason


def model_quality(
    store_uri: str, reference: ReferenceDrift, current: pd.DataFrame
) -> ModelQuality:
    """The reference model version's quality on the batch: estimated, and realized.

    The version is downloaded (and its sha256 checked); its stored performance
    estimator estimates the metrics on every row (labels not needed), and the rows that
    carry a label give the realized metrics.
    """
    from kfp_mlops.model.estimate import estimate_performance

    if reference.model_ref is None:
        return ModelQuality()
    labelled = labelled_rows(current, reference.target)
    with tempfile.TemporaryDirectory() as tmp:
        folder, metadata = Registry(open_store(store_uri)).download(
            reference.model_ref, Path(tmp) / "model")
        model = load_model_folder(folder)[0] if len(current) else None
    count = 0 if labelled is None else len(labelled)
    return ModelQuality(
        labelled=count, realized=performance(model, metadata, labelled),
        estimate=estimate_performance(model, metadata, current) if model is not None
        else None,
        reference=dict(metadata.metrics), version=metadata.version, task=metadata.task,
        rows=len(current))
