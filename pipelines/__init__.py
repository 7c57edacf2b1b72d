"""KFP pipelines (layer 3): wiring only. Each entry builds one pipeline."""

from kfp_mlops.pipelines.batch import build_batch_pipeline
from kfp_mlops.pipelines.training import build_training_pipeline

# name -> builder(cluster: ClusterConfig | None) used by `kfp-mlops compile`.
PIPELINES = {
    "training": build_training_pipeline,
    "batch-inference": build_batch_pipeline,
}

__all__ = ["PIPELINES", "build_batch_pipeline", "build_training_pipeline"]
