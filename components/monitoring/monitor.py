from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def monitor(
    dataset: Input[Dataset],
    statistics: Input[Artifact],
    validation: Input[Artifact],
    drift: Input[Artifact],
    store: str,
    report: Output[HTML],
    summary: Output[Markdown],
    metrics: Output[Metrics],
    force: bool = False,
    pushgateway: str = "",
    estimated_drop: float = 0.0,
) -> NamedTuple("MonitorOutputs", [("retrain", bool), ("drift", bool), ("reason", str),
                                   ("headline", str), ("quality", str)]):
    """Decide to retrain from a batch's drift, the model's quality and data quality.

    Estimates the quality of the production version that ``detect-drift`` compared with
    on every row, without labels (CBPE for classifiers, DLE for regressors, with the
    calibration stored with the version), scores it on the rows that carry labels, and
    writes the monitoring report from the parts.

    Args:
        dataset: The batch as Parquet, from ``ingest``; for a sharded batch, the rows
            its sample kept (``merge-scans``): performance is measured on their labels.
        statistics: The batch's statistics, from ``compute-statistics``.
        validation: The batch checked against the stored schema, from ``validate-data``
            (``check_only``).
        drift: From ``detect-drift``: the reference and the drift per column.
        store: Store URI holding the registry.
        report: HTML report: drift table, reference-vs-current overlays, anomalies.
        summary: Markdown summary.
        metrics: drift_share, dataset_drift, drifted_features, the realized
            (current_*) and estimated (estimated_*, estimated_*_band) performance.
        force: Retrain whatever the data says.
        pushgateway: Prometheus Pushgateway address for the drift and quality gauges
            (optional).
        estimated_drop: Retrain when the primary metric (accuracy; MAE for regression)
            is this much worse than the version's test score: estimated, or realized once
            labels cover the batch (0.05: 5 points of accuracy, or 5% more error); 0
            (default): the estimate is reported, drift alone decides.

    Returns:
        retrain: drift, a quality drop, force, or no production model yet; drift:
        dataset drift; reason: why; headline: what happened in one line ("kept
        production version 3: no drift, estimated accuracy 0.91 +/- 0.02"); quality:
        the estimated and realized primary metric.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.monitoring import steps

    log = logging.getLogger("kfp_mlops.components.monitoring.monitor")
    result = steps.monitor(
        dataset.path, statistics.path, validation.path, drift.path, store, report.path,
        summary.path, force=force, estimated_drop=estimated_drop if estimated_drop > 0 else None,
        pushgateway=pushgateway)
    for name, value in result.metrics().items():
        metrics.log_metric(name, value)
    log.info(result.headline)
    log.info(result.reason)
    return namedtuple("MonitorOutputs", ["retrain", "drift", "reason", "headline", "quality"])(
        result.retrain, result.dataset_drift, result.reason, result.headline,
        result.quality_line(),
    )
