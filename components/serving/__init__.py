"""Inferencing components."""

from kfp_mlops.components.serving.batch_predict import batch_predict
from kfp_mlops.components.serving.deploy import deploy
from kfp_mlops.components.serving.infra_validate import infra_validate
from kfp_mlops.components.serving.score_shards import (
    collect_predictions,
    prepare_scoring,
    score_shard,
    score_shards,
)

COMPONENTS = [infra_validate, deploy, batch_predict, prepare_scoring, score_shard,
              score_shards, collect_predictions]

__all__ = ["COMPONENTS", "batch_predict", "collect_predictions", "deploy", "infra_validate",
           "prepare_scoring", "score_shard", "score_shards"]
