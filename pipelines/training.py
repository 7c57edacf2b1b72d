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

from kfp_mlops.model.run_parameters import default, described
from kfp_mlops.pipelines.cluster import (
    DEFAULT_CLUSTER_STORE,
    ClusterConfig,
    TaskSettings,
    finish_tasks,
    module_pipeline,
)
from kfp_mlops.pipelines.monitoring import training_view
from kfp_mlops.pipelines.steps import TrainingInputs, add_training_steps, trial_loop_pipeline

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
    @described("Train a model on data and release it through every gate.")
    def training_pipeline(
        data: str = default("data"),
        target: str = default("target"),
        task: str = default("task"),
        store: str = DEFAULT_CLUSTER_STORE,
        model_name: str = default("model_name"),
        estimator: str = default("estimator"),
        params: str = default("params"),
        test_size: float = default("test_size"),
        seed: int = default("seed"),
        quality_metric: str = default("quality_metric"),
        quality_threshold: str = default("quality_threshold"),
        blessing_policy: str = default("blessing_policy"),
        update_schema: bool = default("update_schema"),
        warn_only: bool = default("warn_only"),
        namespace: str = default("namespace"),
        canary_traffic_percent: int = default("canary_traffic_percent"),
        n_trials: int = default("n_trials"),
        search_space: str = default("search_space"),
        force_new_version: bool = default("force_new_version"),
        model_registry: str = default("model_registry"),
    ):
        # The descriptions the dashboard shows are the run parameters' own
        # (kfp_mlops/model/run_parameters.py), made into this function's docstring.
        add_training_steps(TrainingInputs.pick(locals()), cluster=cluster, trial_loop=trial_loop)
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
