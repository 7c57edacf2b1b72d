"""KFP pipelines (layer 3): wiring only. Each entry builds one pipeline.

Every module also holds its pipeline as a module-level object (the cluster form), so
``kfp dsl compile --py pipelines/training.py --output training.yaml`` works as KFP's
docs show; the builders take the cluster and task settings ``kfp-mlops compile`` passes.

The builders are imported on first use (PEP 562): importing ``kfp`` takes about 2 s, and
the CLI's parsers read ``PIPELINE_NAMES`` from here without paying it. The local runner
that runs these pipelines on this machine lives in the application layer
(``kfp_mlops.app.local``): only the CLI uses it.
"""

from importlib import import_module

# Pipeline name -> the module that builds it, with build_<module>_pipeline(cluster,
# settings), used by `kfp-mlops compile` and `submit`.
_MODULES = {
    "training": "training",
    "batch-inference": "batch",
    "batch-inference-sharded": "sharded_batch",
    "monitoring": "monitoring",
    "sharded-monitoring": "sharded_monitoring",
    "continuous-training": "continuous",
}
_BUILDERS = {f"build_{module}_pipeline": module for module in _MODULES.values()}

# The names alone, for choices= in the CLI (no kfp import).
PIPELINE_NAMES = tuple(_MODULES)

__all__ = ["PIPELINES", "PIPELINE_NAMES", *_BUILDERS]


def __getattr__(name: str):
    if name in _BUILDERS:
        return getattr(import_module(f"{__name__}.{_BUILDERS[name]}"), name)
    if name == "PIPELINES":  # name -> builder
        return {key: __getattr__(f"build_{module}_pipeline") for key, module in _MODULES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
