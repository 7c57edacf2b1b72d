"""Model life-cycle components."""

from kfp_mlops.components.model.evaluate import evaluate
from kfp_mlops.components.model.gate import quality_gate
from kfp_mlops.components.model.publish import publish
from kfp_mlops.components.model.skip import skip_step
from kfp_mlops.components.model.train import train

COMPONENTS = [train, evaluate, quality_gate, publish, skip_step]

__all__ = ["COMPONENTS", "evaluate", "publish", "quality_gate", "skip_step", "train"]
