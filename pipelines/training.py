"""The training pipeline: ingest -> check -> split -> train -> evaluate -> gate -> publish."""
# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.


from typing import Optional

from kfp import dsl

from kfp_mlops.components.data import check_data, ingest, split_data
from kfp_mlops.components.model import evaluate, publish, quality_gate, skip_step, train
from kfp_mlops.pipelines.cluster import ClusterConfig, on_cluster

PIPELINE_NAME = "kfp-mlops-training"
DEFAULT_CLUSTER_STORE = "s3://mlpipeline/kfp-mlops"


def build_training_pipeline(cluster: Optional[ClusterConfig] = None):
    """Build the training pipeline; ``cluster`` adds S3 credentials for a real cluster."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Train, evaluate, gate and publish a scikit-learn model on tabular data.",
    )
    def training_pipeline(
        data: str = "penguins",
        target: str = "auto",
        task: str = "auto",
        store: str = DEFAULT_CLUSTER_STORE,
        model_name: str = "auto",
        estimator: str = "auto",
        params: str = "{}",
        test_size: float = 0.2,
        seed: int = 42,
        quality_metric: str = "auto",
        quality_threshold: str = "auto",
    ):
        """Train a model on ``data`` and publish it to ``store`` if it passes the gate.

        Parameters are plain strings with "auto" meaning "choose for me" because
        kfp.local (2.17) cannot run pipelines whose parameters default to None.
        """
        ingested = on_cluster(ingest(source=data), cluster)
        checked = check_data(
            dataset=ingested.outputs["dataset"], source=data, target=target, task=task
        )
        split = split_data(
            dataset=ingested.outputs["dataset"],
            target=checked.outputs["target"],
            task=checked.outputs["task"],
            test_size=test_size,
            seed=seed,
        )
        trained = train(
            train_data=split.outputs["train_data"],
            target=checked.outputs["target"],
            task=checked.outputs["task"],
            estimator=estimator,
            params=params,
            seed=seed,
            data_sha256=ingested.outputs["data_sha256"],
        )
        evaluated = evaluate(model=trained.outputs["model"], test_data=split.outputs["test_data"])
        gate = quality_gate(
            metrics=evaluated.outputs["metrics"],
            task=checked.outputs["task"],
            metric=quality_metric,
            threshold=quality_threshold,
        )
        with dsl.If(gate.outputs["passed"] == True, name="publish-if-quality-passed"):  # noqa: E712
            on_cluster(
                publish(
                    model=trained.outputs["model"],
                    metrics=evaluated.outputs["metrics"],
                    store=store,
                    source=data,
                    model_name=model_name,
                    reason=gate.outputs["reason"],
                    run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                ),
                cluster,
            )
        # Every gate has an Else: the run says why a step was skipped (and kfp.local
        # 2.17 only evaluates a dsl.If condition that has an Else branch).
        with dsl.Else(name="publish-skipped"):
            skip_step(step="publish", reason=gate.outputs["reason"])

    return training_pipeline
