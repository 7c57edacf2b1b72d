"""KFP pipelines (layer 3): wiring only. Each entry builds one pipeline.

Every module also holds its pipeline as a module-level object (the cluster form), so
``kfp dsl compile --py pipelines/training.py --output training.yaml`` works as KFP's
docs show; the builders take the cluster and task settings ``kfp-mlops compile`` passes.
"""

from kfp_mlops.pipelines.batch import build_batch_pipeline
from kfp_mlops.pipelines.continuous import build_continuous_pipeline
from kfp_mlops.pipelines.monitoring import build_monitoring_pipeline
from kfp_mlops.pipelines.training import build_training_pipeline

# name -> builder(cluster, settings) used by `kfp-mlops compile` and `submit`.
PIPELINES = {
    "training": build_training_pipeline,
    "batch-inference": build_batch_pipeline,
    "monitoring": build_monitoring_pipeline,
    "continuous-training": build_continuous_pipeline,
}

__all__ = [
    "PIPELINES",
    "build_batch_pipeline",
    "build_continuous_pipeline",
    "build_monitoring_pipeline",
    "build_training_pipeline",
]
