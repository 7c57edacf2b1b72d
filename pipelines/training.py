"""The training pipeline: data gate -> train -> model gate -> publish -> serving gate -> deploy.

ingest (dataset version) -> check -> statistics -> validate (data gate)
  -> split -> train -> evaluate -> bless against the champion (model gate)
     -> publish (staging) and infra validation (serving gate) -> deploy + promote.
Every gate is a boolean plus a reason; every ``dsl.If`` has a ``dsl.Else`` that
records why the next step was skipped.
"""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from kfp import dsl

from kfp_mlops.components.data import (
    check_data,
    compute_statistics,
    ingest,
    split_data,
    validate_data,
)
from kfp_mlops.components.model import (
    bless_model,
    evaluate,
    fixed_params,
    make_candidates,
    model_card,
    publish,
    run_trial,
    select_best,
    skip_step,
    train,
)
from kfp_mlops.components.serving import deploy, infra_validate
from kfp_mlops.pipelines.cluster import ClusterConfig, on_cluster

PIPELINE_NAME = "kfp-mlops-training"
DEFAULT_CLUSTER_STORE = "s3://mlpipeline/kfp-mlops"


def add_training_steps(
    *,
    data,
    target,
    task,
    store,
    model_name,
    estimator,
    params,
    test_size,
    seed,
    quality_metric,
    quality_threshold,
    blessing_policy,
    update_schema,
    warn_only,
    namespace,
    canary_traffic_percent,
    n_trials=0,
    search_space="auto",
    cluster: ClusterConfig | None = None,
) -> None:
    """Add every training step and gate to the pipeline being defined.

    Arguments are pipeline parameters (or constants); the training and continuous
    training pipelines share this wiring.
    """
    ingested = on_cluster(ingest(source=data, store=store), cluster)
    dataset = ingested.outputs["dataset"]
    checked = check_data(
        dataset=dataset, source=data, target=target, task=task, model_name=model_name
    )
    stats = compute_statistics(dataset=dataset)
    data_gate = on_cluster(
        validate_data(
            statistics=stats.outputs["statistics"], store=store,
            schema_name=checked.outputs["model_name"], update_schema=update_schema,
            warn_only=warn_only,
        ),
        cluster,
    )
    with dsl.If(data_gate.outputs["passed"] == True, name="data-valid"):  # noqa: E712
        split = split_data(
            dataset=dataset, target=checked.outputs["target"], task=checked.outputs["task"],
            test_size=test_size, seed=seed,
        )
        # Tuning fans trials out as parallel tasks (pods on a cluster); without it the
        # given parameters pass straight through.
        with dsl.If(n_trials > 1, name="tune"):
            candidates = make_candidates(
                task=checked.outputs["task"], estimator=estimator, search_space=search_space,
                n_trials=n_trials, seed=seed, params=params,
            )
            with dsl.ParallelFor(candidates.output, parallelism=8) as candidate:
                trial = run_trial(
                    train_data=split.outputs["train_data"], target=checked.outputs["target"],
                    task=checked.outputs["task"], params=candidate, estimator=estimator,
                    seed=seed,
                )
            best = select_best(results=dsl.Collected(trial.output))
        with dsl.Else(name="no-tuning"):
            given = fixed_params(params=params)
        trained = train(
            train_data=split.outputs["train_data"], target=checked.outputs["target"],
            task=checked.outputs["task"], estimator=estimator,
            params=dsl.OneOf(best.outputs["params"], given.output), seed=seed,
            data_sha256=ingested.outputs["data_sha256"],
            dataset_version=ingested.outputs["dataset_version"],
            model_name=checked.outputs["model_name"],
        )
        evaluated = evaluate(model=trained.outputs["model"], test_data=split.outputs["test_data"])
        model_gate = on_cluster(
            bless_model(
                metrics=evaluated.outputs["metrics"], test_data=split.outputs["test_data"],
                store=store, model_name=checked.outputs["model_name"],
                task=checked.outputs["task"], quality_metric=quality_metric,
                quality_threshold=quality_threshold, policy=blessing_policy,
            ),
            cluster,
        )
        with dsl.If(model_gate.outputs["passed"] == True, name="model-blessed"):  # noqa: E712
            published = on_cluster(
                publish(
                    model=trained.outputs["model"], metrics=evaluated.outputs["metrics"],
                    store=store, model_name=checked.outputs["model_name"], stage="staging",
                    reason=model_gate.outputs["reason"], blessing=model_gate.outputs["blessing"],
                    dataset_version=ingested.outputs["dataset_version"],
                    run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                ),
                cluster,
            )
            model_card(
                model=trained.outputs["model"], evaluation=evaluated.outputs["evaluation"],
                blessing=model_gate.outputs["blessing"],
            )
            serving_gate = infra_validate(
                model=trained.outputs["model"], test_data=split.outputs["test_data"]
            )
            with dsl.If(serving_gate.outputs["passed"] == True, name="serving-valid"):  # noqa: E712
                on_cluster(
                    deploy(
                        store=store, model_name=published.outputs["model_name"],
                        version=published.outputs["version"], namespace=namespace,
                        canary_traffic_percent=canary_traffic_percent,
                    ),
                    cluster,
                )
            with dsl.Else(name="deploy-skipped"):
                skip_step(step="deploy", reason=serving_gate.outputs["reason"])
        # kfp.local 2.17 only evaluates a dsl.If condition that has an Else branch.
        with dsl.Else(name="publish-skipped"):
            skip_step(step="publish", reason=model_gate.outputs["reason"])
    with dsl.Else(name="training-skipped"):
        skip_step(step="training", reason=data_gate.outputs["reason"])


def build_training_pipeline(cluster: ClusterConfig | None = None):
    """Build the training pipeline; ``cluster`` adds S3 credentials for a real cluster."""

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
        test_size: float = 0.2,
        seed: int = 42,
        quality_metric: str = "auto",
        quality_threshold: str = "auto",
        blessing_policy: str = "auto",
        update_schema: bool = False,
        warn_only: bool = False,
        namespace: str = "",
        canary_traffic_percent: int = 0,
        n_trials: int = 0,
        search_space: str = "auto",
    ):
        """Train a model on ``data`` and release it through every gate.

        Parameters are plain strings with "auto" meaning "choose for me" because
        kfp.local (2.17) cannot run pipelines whose parameters default to None. An empty
        ``namespace`` means no cluster: the deploy step promotes in the registry only.
        """
        add_training_steps(
            data=data, target=target, task=task, store=store, model_name=model_name,
            estimator=estimator, params=params, test_size=test_size, seed=seed,
            quality_metric=quality_metric, quality_threshold=quality_threshold,
            blessing_policy=blessing_policy, update_schema=update_schema,
            warn_only=warn_only, namespace=namespace,
            canary_traffic_percent=canary_traffic_percent, n_trials=n_trials,
            search_space=search_space, cluster=cluster,
        )

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
    deployed = tasks["deploy"].parameters if "deploy" in tasks else {}
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
        "metrics": metrics,
        "gates": run.gates(),
        "skipped": [t.parameters["Output"] for n, t in tasks.items() if n.startswith("skip-step")],
        "tuning": tasks["select-best"].parameters.get("summary")
        if "select-best" in tasks else None,
        "model_uri": published.get("model_uri"),
        "model_name": published.get("model_name"),
        "version": int(published["version"]) if "version" in published else None,
        "deploy": deployed.get("status"),
        "monitor": tasks["monitor"].parameters if "monitor" in tasks else None,
        "reports": run.reports(),
        "run_dir": str(run.run_dir),
    }
