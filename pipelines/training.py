"""The training pipeline: data gate -> train -> model gate -> publish -> serving gate -> deploy.

ingest (dataset version) -> check -> statistics -> validate (data gate)
  -> split -> train -> evaluate -> bless against the champion (model gate)
     -> publish (staging) and infra validation (serving gate) -> deploy + promote.
Every gate is a boolean plus a reason; every ``dsl.If`` has a ``dsl.Else`` that
records why the next step was skipped.
"""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
import dataclasses

from kfp import dsl

from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
)
from kfp_mlops.pipelines.monitoring import training_view
from kfp_mlops.pipelines.steps import TRAINING_DEFAULTS as DEFAULTS
from kfp_mlops.pipelines.steps import add_training_steps, trial_loop_pipeline

PIPELINE_NAME = "kfp-mlops-training"


def build_training_pipeline(
    cluster: ClusterConfig | None = None, settings: TaskSettings | None = None
):
    """Build the training pipeline; ``cluster`` adds S3 credentials for a real cluster."""
    # The trials as pods (cluster), built first: no pipeline is defined in another's body.
    trial_loop = trial_loop_pipeline(settings, cluster) if cluster is not None else None

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Validate data, train, bless against the champion, publish, serve-test "
        "and deploy a scikit-learn model on tabular data.",
    )
    def training_pipeline(
        data: str = "penguins",
        target: str = "auto",
        task: str = "auto",
        store: str = DEFAULT_CLUSTER_STORE,
        model_name: str = "auto",
        estimator: str = "auto",
        params: str = "{}",
        test_size: float = DEFAULTS.test_size,
        seed: int = DEFAULTS.seed,
        quality_metric: str = "auto",
        quality_threshold: str = "auto",
        blessing_policy: str = "auto",
        update_schema: bool = False,
        warn_only: bool = False,
        namespace: str = "",
        canary_traffic_percent: int = 0,
        n_trials: int = DEFAULTS.n_trials,
        search_space: str = "auto",
        force_new_version: bool = False,
        model_registry: str = "",
    ):
        """Train a model on data and release it through every gate.

        Args:
            data: CSV or Parquet URI (s3://bucket/key or a path in the image), or a
                bundled data set: penguins, breast_cancer, wine, iris, diabetes.
            target: Target column; auto takes the bundled set's own.
            task: classification or regression; auto infers it from the target.
            store: Store URI for datasets, schemas and the model registry (s3://bucket/prefix).
            model_name: Registry name, also the InferenceService name; auto derives it
                from the data's name.
            estimator: hist_gradient_boosting, random_forest, logistic_regression,
                ridge, xgboost, lightgbm, or an import path (xgboost.XGBClassifier,
                pkg.module:Class); auto picks hist_gradient_boosting.
            params: Estimator parameters as a JSON object, e.g. {"max_iter": 200}.
            test_size: Share of labelled rows held out for evaluation (0-1).
            seed: Seed of the split, the estimator and the tuning search.
            quality_metric: Metric of the model gate; auto is accuracy or r2.
            quality_threshold: The gate's minimum for that metric; auto is 0.7 accuracy
                or 0.2 r2.
            blessing_policy: A full gate policy, e.g. accuracy>=0.8,f1_macro>=0.7;tolerance=0.01;
                replaces the two above; auto builds one from them.
            update_schema: Re-infer and store the data schema instead of validating against it.
            warn_only: Let the data gate record anomalies without stopping training.
            namespace: Kubernetes namespace of the InferenceService; empty promotes in
                the registry only.
            canary_traffic_percent: Traffic share (1-99) for the new revision before
                promotion; 0 rolls out at once.
            n_trials: Tuning candidates cross-validated in parallel before training; 0
                or 1 trains with params as given.
            search_space: Tuning grid as JSON; auto is one grid per estimator.
            force_new_version: Publish even when a published version was trained from the
                same data, settings and code (otherwise nothing new is published).
            model_registry: Kubeflow Model Registry to register versions, stages and the
                InferenceService in, e.g. http://model-registry-service.kubeflow.svc.cluster.local:8080
                (kubeflow: that service); empty: none. Unreachable: the store still publishes.
        """
        add_training_steps(
            data=data, target=target, task=task, store=store, model_name=model_name,
            estimator=estimator, params=params, test_size=test_size, seed=seed,
            quality_metric=quality_metric, quality_threshold=quality_threshold,
            blessing_policy=blessing_policy, update_schema=update_schema,
            warn_only=warn_only, namespace=namespace,
            canary_traffic_percent=canary_traffic_percent, n_trials=n_trials,
            search_space=search_space, force_new_version=force_new_version, cluster=cluster,
            model_registry=model_registry,
            trial_loop=trial_loop,
        )
        finish_tasks(settings, cluster)

    return training_pipeline


def planned_tasks(n_trials: int) -> int:
    """How many tasks a training run that passes every gate runs (the progress total)."""
    # ingest, check, statistics, validate, split, train, evaluate, bless, publish, card,
    # infra-validate, deploy; then fixed-params, or make-candidates + run-trials (all the
    # trials, in one process pool: the local shape) + select-best.
    return 12 + (3 if n_trials > 1 else 1)


def stopping_gate(gates: dict, identical_to: int | None) -> str | None:
    """The first gate that stopped the run, if any.

    Not a stop: a model identical to a published version (nothing new to publish), or a
    retrain the monitor skipped (no gate reports it).
    """
    stops = (name for name, gate in gates.items()
             if not gate["passed"] and not (name == "bless-model" and identical_to))
    return next(stops, None)


def summarize_training(run, names: dict | None = None) -> dict:
    """The run summary the CLI prints: data, metrics, gates, skips, where the model went.

    A monitoring run is summarized by its ``monitor`` decision: the steps before it
    (the batch's statistics, its check-only validation, drift) are in its report.
    ``names`` (task name -> display name) names the reports as the graph does.
    """
    run = dataclasses.replace(run, tasks=training_view(run.tasks))
    tasks = run.tasks
    ingest_out = tasks.get("ingest")
    dataset = ingest_out.artifacts.get("dataset", {}).get("metadata", {}) if ingest_out else {}
    checked = tasks["check-data"].parameters if "check-data" in tasks else {}
    model_meta = tasks["train"].artifacts["model"]["metadata"] if "train" in tasks else {}
    metrics = tasks["evaluate"].artifacts["metrics"]["metadata"] if "evaluate" in tasks else {}
    published = tasks["publish"].parameters if "publish" in tasks else {}
    deployed = tasks["deploy"].parameters if "deploy" in tasks else {}
    blessing = tasks["bless-model"].artifacts["blessing"] if "bless-model" in tasks else {}
    identical_to = blessing.get("metadata", {}).get("identical_to")
    return {
        "succeeded": run.succeeded,
        "data": {"source": dataset.get("source"), "rows": dataset.get("rows"),
                 "sha256": dataset.get("sha256"),
                 "dataset_version": dataset.get("dataset_version") or None,
                 "new_version": dataset.get("new_version")} if dataset else None,
        "task": checked.get("task"),
        "target": checked.get("target"),
        "estimator": model_meta.get("estimator"),
        "dropped_columns": model_meta.get("dropped_columns", {}),
        "placeholders": dataset.get("placeholders") or {},
        "date_features": model_meta.get("date_features") or {},
        "metrics": metrics,
        "gates": run.gates(),
        "stopped_by": stopping_gate(run.gates(), identical_to),
        "identical_to": int(identical_to) if identical_to else None,
        "blessing_policy": blessing.get("metadata", {}).get("policy"),
        "skipped": [t.parameters["Output"] for n, t in tasks.items() if n.startswith("skip-step")],
        "tuning": tasks["select-best"].parameters.get("summary")
        if "select-best" in tasks else None,
        "model_uri": published.get("model_uri"),
        "model_name": published.get("model_name") or checked.get("model_name"),
        "version": int(published["version"]) if "version" in published else None,
        "deploy": deployed.get("status"),
        "monitor": tasks["monitor"].parameters if "monitor" in tasks else None,
        "reports": run.reports(names),
        "run_dir": str(run.run_dir),
    }


# `training_pipeline` is what `kfp dsl compile --py pipelines/training.py` finds: the cluster
# form, as `kfp-mlops compile` writes it with its defaults.
__getattr__, __dir__ = module_pipeline(
    "training_pipeline", build_training_pipeline, globals()
)
