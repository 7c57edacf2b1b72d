"""KFP pipelines (layer 3): wiring only. Each entry builds one pipeline.

Every module also holds its pipeline as a module-level object (the cluster form), so
``kfp dsl compile --py pipelines/training.py --output training.yaml`` works as KFP's
docs show; the builders take the cluster and task settings ``kfp-mlops compile`` passes.

The builders are imported on first use (PEP 562): importing ``kfp`` takes about 2 s, and
light modules of this package (``local.DEFAULT_RUNS_DIR``, read by every CLI command's
parser) must not pay it.
"""

from importlib import import_module

_BUILDERS = {
    "build_batch_pipeline": "batch",
    "build_continuous_pipeline": "continuous",
    "build_monitoring_pipeline": "monitoring",
    "build_training_pipeline": "training",
}
# name -> builder module attribute; see PIPELINES below.
_PIPELINE_BUILDERS = {
    "training": "build_training_pipeline",
    "batch-inference": "build_batch_pipeline",
    "monitoring": "build_monitoring_pipeline",
    "continuous-training": "build_continuous_pipeline",
}

# The names alone, for choices= in the CLI (no kfp import).
PIPELINE_NAMES = tuple(_PIPELINE_BUILDERS)

__all__ = ["PIPELINES", "PIPELINE_NAMES", *_BUILDERS]


def __getattr__(name: str):
    if name in _BUILDERS:
        return getattr(import_module(f"{__name__}.{_BUILDERS[name]}"), name)
    if name == "PIPELINES":
        # name -> builder(cluster, settings) used by `kfp-mlops compile` and `submit`.
        return {key: __getattr__(builder) for key, builder in _PIPELINE_BUILDERS.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
