"""The monitoring pipeline and the continuous training pipeline built on it."""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.model import skip_step
from kfp_mlops.components.monitoring import monitor
from kfp_mlops.pipelines.cluster import ClusterConfig, on_cluster
from kfp_mlops.pipelines.training import DEFAULT_CLUSTER_STORE, add_training_steps

MONITORING_NAME = "kfp-mlops-monitoring"
CONTINUOUS_NAME = "kfp-mlops-continuous-training"


def build_monitoring_pipeline(cluster: ClusterConfig | None = None):
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
        """Monitor ``data`` against ``model_name@production``."""
        on_cluster(
            monitor(data=data, store=store, model_name=model_name, drift_share=drift_share,
                    pushgateway=pushgateway),
            cluster,
        )

    return monitoring_pipeline


def build_continuous_pipeline(cluster: ClusterConfig | None = None):
    """Build the continuous training pipeline: monitor, then retrain only on drift."""

    @dsl.pipeline(
        name=CONTINUOUS_NAME,
        description="Monitor a new batch; on drift (or when forced, or with no production "
        "model yet) retrain, validate, bless, serve-test, deploy and promote.",
    )
    def continuous_training_pipeline(
        data: str,
        model_name: str,
        target: str = "auto",
        task: str = "auto",
        store: str = DEFAULT_CLUSTER_STORE,
        force: bool = False,
        drift_share: float = 0.5,
        estimator: str = "auto",
        params: str = "{}",
        test_size: float = 0.2,
        seed: int = 42,
        quality_metric: str = "auto",
        quality_threshold: str = "auto",
        blessing_policy: str = "auto",
        namespace: str = "",
        canary_traffic_percent: int = 0,
        pushgateway: str = "",
        n_trials: int = 0,
    ):
        """Retrain ``model_name`` on ``data`` when the batch drifted from its training data."""
        watch = on_cluster(
            monitor(data=data, store=store, model_name=model_name, drift_share=drift_share,
                    force=force, pushgateway=pushgateway),
            cluster,
        )
        with dsl.If(watch.outputs["retrain"] == True, name="retrain"):  # noqa: E712
            add_training_steps(
                data=data, target=target, task=task, store=store, model_name=model_name,
                estimator=estimator, params=params, test_size=test_size, seed=seed,
                quality_metric=quality_metric, quality_threshold=quality_threshold,
                blessing_policy=blessing_policy, update_schema=False, warn_only=False,
                namespace=namespace, canary_traffic_percent=canary_traffic_percent,
                n_trials=n_trials, cluster=cluster,
            )
        with dsl.Else(name="retrain-skipped"):
            skip_step(step="retraining", reason=watch.outputs["reason"])

    return continuous_training_pipeline
