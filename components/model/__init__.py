"""Model life-cycle components."""

from kfp_mlops.components.model import card as _card
from kfp_mlops.components.model import tune as _tune
from kfp_mlops.components.model.bless import bless_model
from kfp_mlops.components.model.card import model_card
from kfp_mlops.components.model.evaluate import evaluate
from kfp_mlops.components.model.publish import publish
from kfp_mlops.components.model.skip import skip_step
from kfp_mlops.components.model.train import train
from kfp_mlops.components.model.tune import (
    fixed_params,
    make_candidates,
    run_trial,
    select_best,
)

COMPONENTS = [
    train, evaluate, bless_model, publish, skip_step, *_tune.COMPONENTS, *_card.COMPONENTS,
]

__all__ = [
    "COMPONENTS", "bless_model", "evaluate", "fixed_params", "make_candidates", "model_card",
    "publish", "run_trial", "select_best", "skip_step", "train",
]
