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


def summarize_training(run) -> dict:
    """The run summary the CLI prints: data, metrics, gates, skips, where the model went."""
    tasks = run.tasks
    ingest_out = tasks.get("ingest")
    dataset = ingest_out.artifacts.get("dataset", {}).get("metadata", {}) if ingest_out else {}
    checked = tasks["check-data"].parameters if "check-data" in tasks else {}
    model_meta = tasks["train"].artifacts["model"]["metadata"] if "train" in tasks else {}
    metrics = tasks["evaluate"].artifacts["metrics"]["metadata"] if "evaluate" in tasks else {}
    published = tasks["publish"].parameters if "publish" in tasks else {}
    return {
        "succeeded": run.succeeded,
        "data": {"source": dataset.get("source"), "rows": dataset.get("rows"),
                 "sha256": dataset.get("sha256")} if dataset else None,
        "task": checked.get("task"),
        "target": checked.get("target"),
        "estimator": model_meta.get("estimator"),
        "dropped_columns": model_meta.get("dropped_columns", {}),
        "metrics": metrics,
        "gates": run.gates(),
        "skipped": [t.parameters["Output"] for n, t in tasks.items() if n.startswith("skip-step")],
        "model_uri": published.get("model_uri"),
        "model_name": published.get("model_name"),
        "version": int(published["version"]) if "version" in published else None,
        "run_dir": str(run.run_dir),
    }
