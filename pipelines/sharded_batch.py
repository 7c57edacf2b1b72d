"""The batch inference pipeline for a prefix of Parquet files, one part file a shard.

Its own entry in :data:`kfp_mlops.pipelines.PIPELINES` (``batch-inference-sharded``), so
``kfp-mlops compile`` writes it beside ``batch-inference`` and the IR checks cover it;
the wiring is :func:`kfp_mlops.pipelines.batch.build_batch_pipeline` with ``sharded=True``.
"""

from kfp_mlops.pipelines.batch import build_batch_pipeline
from kfp_mlops.pipelines.cluster import ClusterConfig, TaskSettings, module_pipeline


def build_sharded_batch_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None, **options
):
    """Build the sharded batch inference pipeline (pods on a cluster, a pool locally)."""
    return build_batch_pipeline(cluster, settings, sharded=True, **options)


# What `kfp dsl compile --py pipelines/sharded_batch.py` finds: the cluster form.
__getattr__, __dir__ = module_pipeline(
    "sharded_batch_inference_pipeline", build_sharded_batch_pipeline, globals()
)
