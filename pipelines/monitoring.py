"""The monitoring pipeline: one batch against the production model's training data.

ingest (the batch as Parquet, no dataset version) -> compute-statistics ->
validate-data (check only, against the stored schema) and detect-drift (against the
production model's dataset version) -> monitor (performance on labelled rows, the
report, and the ``retrain`` decision that the continuous pipeline's ``dsl.If`` reads).
"""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.data import compute_statistics, ingest, validate_data
from kfp_mlops.components.monitoring import detect_drift, monitor
from kfp_mlops.model.run_parameters import default, described
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
    on_cluster,
)

MONITORING_NAME = "kfp-mlops-monitoring"
# The monitoring steps' task names. In the continuous pipeline they come first, so the
# training steps that reuse a component get KFP's unique names (validate-data-2, ...).
MONITORING_TASKS = ("ingest", "compute-statistics", "validate-data", "detect-drift", "monitor")
# The sharded monitoring pipeline's own steps (pipelines/sharded_monitoring.py).
SHARDED_SCAN_TASKS = ("plan-shards", "scan-shards", "scan-shard", "merge-scans",
                      "detect-drift-sharded")


def add_monitoring_steps(
    *, data, store, model_name, drift_share, force=False, pushgateway="",
    estimated_drop=0.0, cluster: ClusterConfig | None = None,
):
    """Add the monitoring steps to the pipeline being defined; return the monitor task.

    Its ``retrain`` output is the decision a ``dsl.If`` branches on.
    """
    # No store: a monitored batch is not published as a dataset version (training does).
    batch = on_cluster(ingest(source=data), cluster)
    dataset = batch.outputs["dataset"]
    stats = compute_statistics(dataset=dataset)
    quality = on_cluster(
        validate_data(statistics=stats.outputs["statistics"], store=store,
                      schema_name=model_name, check_only=True),
        cluster,
    )
    drift = on_cluster(
        detect_drift(dataset=dataset, store=store, model_name=model_name,
                     drift_share=drift_share),
        cluster,
    )
    return on_cluster(
        monitor(dataset=dataset, statistics=stats.outputs["statistics"],
                validation=quality.outputs["validation"], drift=drift.outputs["drift"],
                store=store, force=force, pushgateway=pushgateway,
                estimated_drop=estimated_drop),
        cluster,
    )


def training_view(tasks: dict) -> dict:
    """The tasks of a run as the training steps name them, without the monitoring steps.

    In the continuous pipeline a training step that reuses a monitoring step's component
    carries KFP's ``-2``; summaries read it under the component's own name. The monitor's
    decision (task ``monitor``) stays.
    """
    if "detect-drift" not in tasks and "detect-drift-sharded" not in tasks:
        return tasks
    hidden = (set(MONITORING_TASKS) | set(SHARDED_SCAN_TASKS)) - {"monitor"}
    renamed = {f"{name}-2": name for name in hidden}
    return {renamed.get(name, name): task for name, task in tasks.items() if name not in hidden}


def build_monitoring_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None
):
    """Build the monitoring pipeline: one batch against the production model's data."""

    @dsl.pipeline(
        name=MONITORING_NAME,
        description="Data quality, drift and performance of a batch against the production "
        "model's reference dataset version.",
    )
    @described(
        "Monitor a batch against the production model's training data.",
        data="The batch: CSV or Parquet URI, or a bundled data set name.",
        model_name="Registry name; its production version's dataset is the reference.",
        store="Store URI holding the registry and the dataset versions.",
    )
    def monitoring_pipeline(
        data: str,
        model_name: str,
        store: str = DEFAULT_CLUSTER_STORE,
        drift_share: float = default("drift_share"),
        pushgateway: str = default("pushgateway"),
        estimated_drop: float = default("estimated_drop"),
    ):
        add_monitoring_steps(data=data, store=store, model_name=model_name,
                             drift_share=drift_share, pushgateway=pushgateway,
                             estimated_drop=estimated_drop, cluster=cluster)
        finish_tasks(settings, cluster)

    return monitoring_pipeline


# `monitoring_pipeline` is what `kfp dsl compile --py pipelines/monitoring.py` finds: the cluster
# form, as `kfp-mlops compile` writes it with its defaults.
__getattr__, __dir__ = module_pipeline(
    "monitoring_pipeline", build_monitoring_pipeline, globals()
)
