"""The monitoring pipeline for data beyond one pod: a Parquet prefix scanned in shards.

plan-shards (footers only) -> scan-shard per shard (``dsl.ParallelFor``, a pod each, in
a nested pipeline; each writes its partial to the store's fan-in prefix) -> merge-scans
-> validate-data (check only) and detect-drift-sharded -> monitor.

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
from typing import List  # noqa: UP035 (KFP reads the nested pipeline's annotations)

from kfp import dsl
from kfp.dsl import Artifact, Input

from kfp_mlops.components.data import validate_data
from kfp_mlops.components.data.shards import merge_scans, plan_shards, scan_shard, scan_shards
from kfp_mlops.components.monitoring import monitor
from kfp_mlops.components.monitoring.drift import detect_drift_sharded
from kfp_mlops.data.shards import DEFAULT_SHARD_ROWS
from kfp_mlops.model.run_parameters import default, described
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


SCAN_LOOP_NAME = "scan-loop"


def scan_loop_pipeline(settings: TaskSettings | None = None,
                       cluster: ClusterConfig | None = None, parallelism: int = 8):
    """The shard scans as a pipeline of their own: one DAG task that merge-scans follows.

    Each ``scan-shard`` writes its partial to the store's fan-in prefix of the run and
    ``merge-scans`` reads them after this DAG task: no ``dsl.Collected``, which KFP
    resolves only from 2.14.0 (``kfp_mlops.fanin``, docs/cluster.md).
    """

    @dsl.pipeline(name=SCAN_LOOP_NAME)
    def scan_loop(plan: Input[Artifact], shards: List[int], store: str, run_id: str):  # noqa: UP006
        """Scan every shard, one scan-shard task each.

        Args:
            plan: plan-shards' plan.
            shards: plan-shards' shard indices.
            store: Store URI whose fan-in prefix receives the partials.
            run_id: The run's id, naming the fan-in prefix.
        """
        with dsl.ParallelFor(shards, parallelism=parallelism) as shard:
            on_cluster(scan_shard(plan=plan, shard=shard, store=store, run_id=run_id), cluster)
        finish_tasks(settings, cluster)

    return scan_loop


def add_sharded_scan(*, data, shard_rows, cluster=None, shards_as="pods", workers=0,
                     store=None, scan_loop=None):
    """Plan, scan and merge a sharded source; return the merging task.

    ``pods`` needs ``scan_loop`` (:func:`scan_loop_pipeline`) and the ``store`` whose
    fan-in prefix the shards write to. The result's outputs are ``statistics``, ``scan``
    (with the drift samples) and ``sample``.
    """
    if shards_as not in SHARD_SHAPES:
        raise ValueError(f"shards_as is {shards_as!r}; use one of {', '.join(SHARD_SHAPES)}")
    if shards_as == "pods" and (scan_loop is None or store is None):
        raise ValueError("the pods shape needs scan_loop=scan_loop_pipeline(...) and the "
                         "store its shards write to; or use shards_as='pool'")
    plan = on_cluster(plan_shards(source=data, shard_rows=shard_rows), cluster)
    if shards_as == "pool":
        return on_cluster(scan_shards(plan=plan.outputs["plan"], workers=workers), cluster)
    scans = scan_loop(plan=plan.outputs["plan"], shards=plan.outputs["Output"], store=store,
                      run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
    return on_cluster(
        merge_scans(plan=plan.outputs["plan"], store=store,
                    run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).after(scans),
        cluster,
    )


def build_sharded_monitoring_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None,
    *, shards_as: str | None = None, parallelism: int = 8,
):
    """Build the sharded monitoring pipeline; pods on a cluster, a pool locally."""
    shape = shards_as or ("pods" if cluster is not None else "pool")
    scan_loop = scan_loop_pipeline(settings, cluster, parallelism) if shape == "pods" else None

    @dsl.pipeline(
        name=SHARDED_MONITORING_NAME,
        description="Monitoring of a Parquet prefix too large for one pod: statistics, "
        "validation and drift as a fan-out over shards plus a merge.",
    )
    @described(
        "Monitor a sharded batch against the production model's training data.",
        data="The batch: s3://bucket/prefix/, a folder (hive key=value folders become\n"
        "columns) or a glob of Parquet files.",
        model_name="Registry name; its production version's dataset is the reference.",
        store="Store URI holding the registry and the dataset versions.",
        shard_rows="At most this many rows a shard (a pod's scan).",
    )
    def sharded_monitoring_pipeline(
        data: str,
        model_name: str,
        store: str = DEFAULT_CLUSTER_STORE,
        drift_share: float = default("drift_share"),
        shard_rows: int = DEFAULT_SHARD_ROWS,
        pushgateway: str = default("pushgateway"),
        estimated_drop: float = default("estimated_drop"),
    ):
        merged = add_sharded_scan(data=data, shard_rows=shard_rows, cluster=cluster,
                                  shards_as=shape, store=store, scan_loop=scan_loop)
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
