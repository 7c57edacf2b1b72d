"""The monitoring pipeline: one batch against the production model's training data."""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.monitoring import monitor
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
    on_cluster,
)

MONITORING_NAME = "kfp-mlops-monitoring"


def build_monitoring_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None
):
    """Build the monitoring pipeline: one batch against the production model's data."""

    @dsl.pipeline(
        name=MONITORING_NAME,
        description="Data quality, drift and performance of a batch against the production "
        "model's reference dataset version.",
    )
    def monitoring_pipeline(
        data: str,
        model_name: str,
        store: str = DEFAULT_CLUSTER_STORE,
        drift_share: float = 0.5,
        pushgateway: str = "",
    ):
        """Monitor a batch against the production model's training data.

        Args:
            data: The batch: CSV or Parquet URI, or a bundled data set name.
            model_name: Registry name; its production version's dataset is the reference.
            store: Store URI holding the registry and the dataset versions.
            drift_share: Share of drifted features (0-1) that counts as drift.
            pushgateway: Prometheus Pushgateway host:port for the drift gauges; empty: none.
        """
        on_cluster(
            monitor(data=data, store=store, model_name=model_name, drift_share=drift_share,
                    pushgateway=pushgateway),
            cluster,
        )
        finish_tasks(settings, cluster)

    return monitoring_pipeline


# `monitoring_pipeline` is what `kfp dsl compile --py pipelines/monitoring.py` finds: the cluster
# form, as `kfp-mlops compile` writes it with its defaults.
__getattr__, __dir__ = module_pipeline(
    "monitoring_pipeline", build_monitoring_pipeline, globals()
)
