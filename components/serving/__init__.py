"""Inferencing components."""

from kfp_mlops.components.serving.batch_predict import batch_predict
from kfp_mlops.components.serving.deploy import deploy
from kfp_mlops.components.serving.infra_validate import infra_validate

COMPONENTS = [infra_validate, deploy, batch_predict]

__all__ = ["COMPONENTS", "batch_predict", "deploy", "infra_validate"]
