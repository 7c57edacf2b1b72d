"""The monitoring pipeline for data beyond one pod: a Parquet prefix scanned in shards.

plan-shards (footers only) -> scan-shard per shard (``dsl.ParallelFor``, a pod each) ->
merge-scans -> validate-data (check only) and detect-drift-sharded -> monitor.

Locally (``shards_as="pool"``) one ``scan-shards`` task scans the shards in a process pool
and merges, because kfp.local runs one task at a time. Either way the statistics, the
data gate and the drift decision equal those of one scan of the whole batch
(:mod:`kfp_mlops.data.shard_stats`); the monitor scores the labelled rows of the
batch's row sample (about 100,000 rows), not every row.

Why a pipeline of its own: the monitoring pipeline's ``ingest`` reads any CSV or Parquet
file and converts it in one pod; this one reads Parquet in place, and a batch under
``shard_rows`` rows is one shard, so it serves small prefixes too.
"""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.data import validate_data
from kfp_mlops.components.data.shards import merge_scans, plan_shards, scan_shard, scan_shards
from kfp_mlops.components.monitoring import monitor
from kfp_mlops.components.monitoring.drift import detect_drift_sharded
from kfp_mlops.data.shards import DEFAULT_SHARD_ROWS
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
    on_cluster,
)

SHARDED_MONITORING_NAME = "kfp-mlops-sharded-monitoring"
# The tasks a local run shows (the pool shape).
SHARDED_MONITORING_TASKS = ("plan-shards", "scan-shards", "validate-data",
                            "detect-drift-sharded", "monitor")
SHARD_SHAPES = ("pods", "pool")


def add_sharded_scan(*, data, shard_rows, cluster=None, shards_as="pods", parallelism=8,
                     workers=0):
    """Plan, scan and merge a sharded source; return the merging task.

    Its outputs are ``statistics``, ``scan`` (with the drift samples) and ``sample``.
    """
    if shards_as not in SHARD_SHAPES:
        raise ValueError(f"shards_as is {shards_as!r}; use one of {', '.join(SHARD_SHAPES)}")
    plan = on_cluster(plan_shards(source=data, shard_rows=shard_rows), cluster)
    if shards_as == "pool":
        return on_cluster(scan_shards(plan=plan.outputs["plan"], workers=workers), cluster)
    with dsl.ParallelFor(plan.outputs["Output"], parallelism=parallelism) as shard:
        part = on_cluster(scan_shard(plan=plan.outputs["plan"], shard=shard), cluster)
    return merge_scans(plan=plan.outputs["plan"], partials=dsl.Collected(part.outputs["partial"]))


def build_sharded_monitoring_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None,
    *, shards_as: str | None = None, parallelism: int = 8,
):
    """Build the sharded monitoring pipeline; pods on a cluster, a pool locally."""
    shape = shards_as or ("pods" if cluster is not None else "pool")

    @dsl.pipeline(
        name=SHARDED_MONITORING_NAME,
        description="Monitoring of a Parquet prefix too large for one pod: statistics, "
        "validation and drift as a fan-out over shards plus a merge.",
    )
    def sharded_monitoring_pipeline(
        data: str,
        model_name: str,
        store: str = DEFAULT_CLUSTER_STORE,
        drift_share: float = 0.5,
        shard_rows: int = DEFAULT_SHARD_ROWS,
        pushgateway: str = "",
        estimated_drop: float = 0.0,
    ):
        """Monitor a sharded batch against the production model's training data.

        Args:
            data: The batch: s3://bucket/prefix/, a folder (hive key=value folders become
                columns) or a glob of Parquet files.
            model_name: Registry name; its production version's dataset is the reference.
            store: Store URI holding the registry and the dataset versions.
            drift_share: Share of drifted features (0-1) that counts as drift.
            shard_rows: At most this many rows a shard (a pod's scan).
            pushgateway: Prometheus Pushgateway host:port for the drift gauges; empty: none.
            estimated_drop: Retrain when accuracy (MAE for regression) is estimated this
                much worse than on the version's test rows (0.05); 0: drift alone decides.
        """
        merged = add_sharded_scan(data=data, shard_rows=shard_rows, cluster=cluster,
                                  shards_as=shape, parallelism=parallelism)
        stats = merged.outputs["statistics"]
        quality = on_cluster(
            validate_data(statistics=stats, store=store, schema_name=model_name,
                          check_only=True),
            cluster,
        )
        drift = on_cluster(
            detect_drift_sharded(scan=merged.outputs["scan"], store=store,
                                 model_name=model_name, drift_share=drift_share),
            cluster,
        )
        on_cluster(
            monitor(dataset=merged.outputs["sample"], statistics=stats,
                    validation=quality.outputs["validation"], drift=drift.outputs["drift"],
                    store=store, pushgateway=pushgateway, estimated_drop=estimated_drop),
            cluster,
        )
        finish_tasks(settings, cluster)

    return sharded_monitoring_pipeline


# What `kfp dsl compile --py pipelines/sharded_monitoring.py` finds: the cluster form.
__getattr__, __dir__ = module_pipeline(
    "sharded_monitoring_pipeline", build_sharded_monitoring_pipeline, globals()
)
