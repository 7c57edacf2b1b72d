"""The batch inference pipeline: a registry version or stage plus a dataset -> predictions."""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.serving import batch_predict
from kfp_mlops.pipelines.cluster import ClusterConfig, on_cluster
from kfp_mlops.pipelines.training import DEFAULT_CLUSTER_STORE

PIPELINE_NAME = "kfp-mlops-batch-inference"


def build_batch_pipeline(cluster: ClusterConfig | None = None):
    """Build the batch inference pipeline; ``cluster`` adds S3 credentials."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Score a CSV/Parquet dataset with a registry model, streaming row groups.",
    )
    def batch_inference_pipeline(
        data: str,
        model: str,
        store: str = DEFAULT_CLUSTER_STORE,
        with_probabilities: bool = False,
        keep_columns: str = "",
    ):
        """Score ``data`` with ``model`` (NAME, NAME@VERSION or NAME@STAGE)."""
        on_cluster(
            batch_predict(
                store=store, model=model, data=data, with_probabilities=with_probabilities,
                keep_columns=keep_columns,
            ),
            cluster,
        )

    return batch_inference_pipeline
