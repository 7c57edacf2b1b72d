"""Model life-cycle components."""

from kfp_mlops.components.model.bless import bless_model
from kfp_mlops.components.model.evaluate import evaluate
from kfp_mlops.components.model.publish import publish
from kfp_mlops.components.model.skip import skip_step
from kfp_mlops.components.model.train import train

COMPONENTS = [train, evaluate, bless_model, publish, skip_step]

__all__ = ["COMPONENTS", "bless_model", "evaluate", "publish", "skip_step", "train"]
