"""The batch inference pipeline: a registry version or stage plus a dataset -> predictions."""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.serving import batch_predict
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
    on_cluster,
)

PIPELINE_NAME = "kfp-mlops-batch-inference"


def build_batch_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None
):
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
        ignore_unknown_columns: bool = False,
    ):
        """Score data with a registry model.

        Args:
            data: CSV or Parquet URI to score (s3://bucket/key or a path in the image).
            model: Registry reference: NAME, NAME@VERSION or NAME@STAGE (e.g. penguins@production).
            store: Store URI holding the registry and receiving the predictions.
            with_probabilities: Add a proba_<class> column per class (classifiers).
            keep_columns: Input columns to copy beside the predictions, comma-separated (ids).
            ignore_unknown_columns: Ignore input columns that are neither features, the
                target, columns training dropped nor keep_columns (default: refuse them).
        """
        on_cluster(
            batch_predict(
                store=store, model=model, data=data, with_probabilities=with_probabilities,
                keep_columns=keep_columns, ignore_unknown_columns=ignore_unknown_columns,
            ),
            cluster,
        )
        finish_tasks(settings, cluster)

    return batch_inference_pipeline


# `batch_inference_pipeline` is what `kfp dsl compile --py pipelines/batch.py` finds: the cluster
# form, as `kfp-mlops compile` writes it with its defaults.
__getattr__, __dir__ = module_pipeline(
    "batch_inference_pipeline", build_batch_pipeline, globals()
)
