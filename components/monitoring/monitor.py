from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics, Output

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def monitor(
    data: str,
    store: str,
    model_name: str,
    report: Output[HTML],
    summary: Output[Markdown],
    metrics: Output[Metrics],
    drift_share: float = 0.5,
    force: bool = False,
    pushgateway: str = "",
) -> NamedTuple("MonitorOutputs", [("retrain", bool), ("drift", bool), ("reason", str)]):
    """Compare a batch with the production model's training data; decide to retrain.

    Data quality against the stored schema, drift per feature and for the dataset, and
    the production model's performance on rows that carry labels.

    Args:
        data: The current batch: path, ``s3://`` URI or bundled name (CSV/Parquet).
        store: Store URI holding the registry, dataset versions and schemas.
        model_name: Registry name; its production version is the reference.
        report: HTML report: drift table, reference-vs-current overlays, anomalies.
        summary: Markdown summary.
        metrics: drift_share, dataset_drift, drifted_features, current performance.
        drift_share: Share of drifted features that means dataset drift.
        force: Retrain whatever the data says.
        pushgateway: Prometheus Pushgateway address for the drift gauges (optional).

    Returns:
        retrain: drift, force, or no production model yet; drift: dataset drift;
        reason: why.
    """
    from collections import namedtuple

    from kfp_mlops.monitor import monitor_batch, push_drift_gauges

    result = monitor_batch(
        store, model_name, data, drift_share=drift_share, force=force,
        report_path=report.path, summary_path=summary.path,
    )
    for name, value in result.metrics().items():
        metrics.log_metric(name, value)
    if pushgateway:
        push_drift_gauges(pushgateway, model_name, result)
    print(result.reason)
    return namedtuple("MonitorOutputs", ["retrain", "drift", "reason"])(
        result.retrain, result.dataset_drift, result.reason
    )
