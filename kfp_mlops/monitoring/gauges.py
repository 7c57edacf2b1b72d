"""Monitoring's gauges for Prometheus, pushed to a Pushgateway after each batch."""

from __future__ import annotations

from kfp_mlops.monitoring.decision import MonitorResult


def push_drift_gauges(gateway: str, model_name: str, result: MonitorResult) -> None:
    """Publish the drift and model-quality gauges the alert rules read to a Pushgateway.

    Model quality: ``kfp_mlops_estimated_performance`` and its 95% half-width
    ``kfp_mlops_estimated_performance_band`` per metric, ``kfp_mlops_realized_performance``
    on the labelled rows, and ``kfp_mlops_performance_drop`` (the primary metric's drop
    from the version's test score; label ``source`` says estimated or realized).
    """
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    Gauge("kfp_mlops_drift_share", "Share of drifted features in the last monitored batch",
          ["model"], registry=registry).labels(model_name).set(result.drift_share)
    Gauge("kfp_mlops_dataset_drift", "1 when the last monitored batch drifted",
          ["model"], registry=registry).labels(model_name).set(float(result.dataset_drift))
    estimate = result.estimated
    if estimate is not None and estimate.metrics:
        value = Gauge("kfp_mlops_estimated_performance", "Performance of the production "
                      "version estimated without labels (CBPE or DLE), last batch",
                      ["model", "metric"], registry=registry)
        band = Gauge("kfp_mlops_estimated_performance_band", "Half-width of the 95% band "
                     "of kfp_mlops_estimated_performance", ["model", "metric"],
                     registry=registry)
        for name, figure in estimate.metrics.items():
            value.labels(model_name, name).set(figure)
            band.labels(model_name, name).set(estimate.band.get(name, 0.0))
    if result.performance:
        realized = Gauge("kfp_mlops_realized_performance", "Performance of the production "
                         "version on the last batch's labelled rows", ["model", "metric"],
                         registry=registry)
        for name, figure in result.performance.items():
            realized.labels(model_name, name).set(figure)
    if result.quality_drop is not None and result.primary_metric is not None:
        Gauge("kfp_mlops_performance_drop", "How much worse the production version does "
              "on the last batch than on its test rows (estimated, or realized once "
              "labelled; an error metric's rise is relative)",
              ["model", "metric", "source"], registry=registry).labels(
            model_name, result.primary_metric, result.quality_source or "estimated",
        ).set(result.quality_drop)
    push_to_gateway(gateway, job="kfp-mlops-monitoring", registry=registry)
