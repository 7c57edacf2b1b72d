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
) -> NamedTuple("MonitorOutputs", [("retrain", bool), ("drift", bool), ("reason", str)]):
    """Decide to retrain from a batch's drift, data quality and the model's performance.

    Scores the production version that ``detect-drift`` compared with on the rows that
    carry labels, and writes the monitoring report from the parts.

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
        metrics: drift_share, dataset_drift, drifted_features, current performance.
        force: Retrain whatever the data says.
        pushgateway: Prometheus Pushgateway address for the drift gauges (optional).

    Returns:
        retrain: drift, force, or no production model yet; drift: dataset drift;
        reason: why.
    """
    import json
    import logging
    from collections import namedtuple

    from kfp_mlops.data.sources import read_parquet
    from kfp_mlops.data.stats import DatasetStatistics
    from kfp_mlops.data.validation import ValidationResult
    from kfp_mlops.monitor import (
        ReferenceDrift,
        decide,
        model_performance,
        push_drift_gauges,
        write_reports,
    )

    log = logging.getLogger("kfp_mlops.components.monitoring.monitor")

    with open(drift.path) as handle:
        reference = ReferenceDrift.from_json(handle.read())
    with open(validation.path) as handle:
        checked = json.load(handle)["validation"]
    quality = ValidationResult.from_dict(checked) if checked else None
    current = read_parquet(dataset.path)
    labelled, scores = model_performance(store, reference, current)
    result = decide(reference, quality, labelled=labelled, metrics=scores, force=force)
    with open(statistics.path) as handle:
        stats = DatasetStatistics.from_json(handle.read())
    write_reports(stats, reference, quality, result, stats.rows, report.path, summary.path)
    for name, value in result.metrics().items():
        metrics.log_metric(name, value)
    if pushgateway:
        push_drift_gauges(pushgateway, reference.model_name, result)
    log.info(result.reason)
    return namedtuple("MonitorOutputs", ["retrain", "drift", "reason"])(
        result.retrain, result.dataset_drift, result.reason
    )
