"""KFP pipelines (layer 3): wiring only. Each entry builds one pipeline."""

from kfp_mlops.pipelines.training import build_training_pipeline

# name -> builder(cluster: ClusterConfig | None) used by `kfp-mlops compile`.
PIPELINES = {
    "training": build_training_pipeline,
}

__all__ = ["PIPELINES", "build_training_pipeline"]
