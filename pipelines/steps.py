"""The training steps and gates, shared by the training and continuous training pipelines.

ingest (dataset version) -> check -> statistics -> validate (data gate)
  -> split -> [tune] -> train -> evaluate -> bless against the champion (model gate)
     -> publish (staging), model card and infra validation (serving gate) -> deploy;
     a refused model gets its card too (marked refused), and is not published.
Every gate is a boolean plus a reason for ``dsl.If`` and a verdict artifact that the
acting steps (publish, deploy) re-check; every ``dsl.If`` has a ``dsl.Else`` that
records why the next step was skipped.
"""


# No "from __future__ import annotations": KFP reads the pipeline signature at runtime.
from dataclasses import dataclass, fields
from typing import Any, List  # noqa: UP035 (KFP reads the nested pipeline's annotations)

from kfp import dsl
from kfp.dsl import Dataset, Input

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
from kfp_mlops.model.run_parameters import default, settings_arguments
from kfp_mlops.model.settings import BlessingSettings, TrainingSettings
from kfp_mlops.pipelines.cluster import ClusterConfig, TaskSettings, finish_tasks, on_cluster


def pipeline_arguments(
    pipeline, training: TrainingSettings, blessing: BlessingSettings, **others: Any
) -> dict[str, Any]:
    """The arguments of ``pipeline`` (training or continuous training) for these settings.

    The settings' parameters are the run parameters' (:func:`settings_arguments`: ``None``,
    "choose", is passed as ``"auto"``); ``others`` are the remaining parameters
    (data, store, ...). A setting the pipeline has no parameter for is left out, and must
    then be at its default (continuous training takes no ``search_space``).
    """
    arguments = {**settings_arguments(training, blessing), **others}
    accepted = pipeline.component_spec.inputs
    return {name: value for name, value in arguments.items() if name in accepted}


@dataclass(frozen=True)
class TrainingInputs:
    """The run parameters the training steps take: one per training pipeline parameter.

    Inside a pipeline each is a pipeline parameter (a channel) or a constant; the names,
    types and defaults are the run parameters' (:mod:`kfp_mlops.model.run_parameters`),
    which ``tests/test_settings_declared_once.py`` checks. A pipeline hands over its
    parameters with :meth:`pick`; what it lacks keeps the default here (continuous
    training neither updates the schema nor tunes over a custom grid).
    """

    data: Any
    store: Any
    model_name: Any
    target: Any = default("target")
    task: Any = default("task")
    estimator: Any = default("estimator")
    params: Any = default("params")
    test_size: Any = default("test_size")
    seed: Any = default("seed")
    n_trials: Any = default("n_trials")
    search_space: Any = default("search_space")
    quality_metric: Any = default("quality_metric")
    quality_threshold: Any = default("quality_threshold")
    blessing_policy: Any = default("blessing_policy")
    update_schema: Any = default("update_schema")
    warn_only: Any = default("warn_only")
    force_new_version: Any = default("force_new_version")
    namespace: Any = default("namespace")
    canary_traffic_percent: Any = default("canary_traffic_percent")
    model_registry: Any = default("model_registry")

    @classmethod
    def pick(cls, values: dict[str, Any]) -> "TrainingInputs":
        """The inputs among ``values`` (a pipeline's ``locals()``), by name."""
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in names})


def add_training_steps(
    inputs: TrainingInputs,
    *,
    cluster: ClusterConfig | None = None,
    repeated_as: str = "",
    trial_loop=None,
) -> None:
    """Add every training step and gate to the pipeline being defined.

    ``inputs`` are pipeline parameters (or constants); the training and continuous
    training pipelines share this wiring. ``repeated_as`` prefixes the display names of
    the data steps a pipeline already has once (continuous training's monitoring
    ingests, profiles and validates the batch first): the graph and the progress lines
    then read ``retrain-ingest``, not KFP's ``ingest-2``. For a cluster, ``trial_loop`` is
    :func:`trial_loop_pipeline`'s, built before the pipeline (the trials as pods).
    """
    data, store, model_name = inputs.data, inputs.store, inputs.model_name
    seed, params = inputs.seed, inputs.params
    ingested = on_cluster(ingest(source=data, store=store), cluster)
    dataset = ingested.outputs["dataset"]
    checked = check_data(
        dataset=dataset, source=data, target=inputs.target, task=inputs.task,
        model_name=model_name,
    )
    stats = compute_statistics(dataset=dataset)
    data_gate = on_cluster(
        validate_data(
            statistics=stats.outputs["statistics"], store=store,
            schema_name=checked.outputs["model_name"], update_schema=inputs.update_schema,
            warn_only=inputs.warn_only, run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        ),
        cluster,
    )
    if repeated_as:
        for task, name in ((ingested, "ingest"), (stats, "compute-statistics"),
                           (data_gate, "validate-data")):
            task.set_display_name(f"{repeated_as}{name}")
    with dsl.If(data_gate.outputs["passed"] == True, name="data-valid"):  # noqa: E712
        split = split_data(
            dataset=dataset, target=checked.outputs["target"], task=checked.outputs["task"],
            test_size=inputs.test_size, seed=seed,
        )
        # Tuning: one pod per trial on a cluster, one process pool locally (see
        # add_tuning_steps); without it the given parameters pass straight through.
        with dsl.If(inputs.n_trials > 1, name="tune"):
            best = add_tuning_steps(
                train_data=split.outputs["train_data"], target=checked.outputs["target"],
                task=checked.outputs["task"], estimator=inputs.estimator,
                search_space=inputs.search_space, n_trials=inputs.n_trials, seed=seed,
                params=params,
                trials_as="pods" if cluster is not None else "pool",
                store=store, trial_loop=trial_loop,
            )
        with dsl.Else(name="no-tuning"):
            given = fixed_params(params=params)
        trained = train(
            train_data=split.outputs["train_data"], target=checked.outputs["target"],
            task=checked.outputs["task"], estimator=inputs.estimator,
            params=dsl.OneOf(best.outputs["params"], given.output), seed=seed,
            data_sha256=ingested.outputs["data_sha256"],
            dataset_version=ingested.outputs["dataset_version"],
            model_name=checked.outputs["model_name"],
        )
        evaluated = evaluate(model=trained.outputs["model"], test_data=split.outputs["test_data"])
        model_gate = on_cluster(
            bless_model(
                model=trained.outputs["model"], metrics=evaluated.outputs["metrics"],
                test_data=split.outputs["test_data"],
                store=store, model_name=checked.outputs["model_name"],
                task=checked.outputs["task"], quality_metric=inputs.quality_metric,
                quality_threshold=inputs.quality_threshold, policy=inputs.blessing_policy,
                force_new_version=inputs.force_new_version,
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
                    model_registry=inputs.model_registry, run_uid=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                    evaluation=evaluated.outputs["evaluation"],
                ),
                cluster,
            )
            # After publish, so the card names the version and run that published it.
            model_card(
                model=trained.outputs["model"], evaluation=evaluated.outputs["evaluation"],
                blessing=model_gate.outputs["blessing"],
                model_version=published.outputs["version"],
                run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            )
            serving_gate = infra_validate(
                model=trained.outputs["model"], test_data=split.outputs["test_data"]
            )
            with dsl.If(serving_gate.outputs["passed"] == True, name="serving-valid"):  # noqa: E712
                on_cluster(
                    deploy(
                        store=store, model_name=published.outputs["model_name"],
                        version=published.outputs["version"],
                        blessing=model_gate.outputs["blessing"],
                        infra_validation=serving_gate.outputs["validation"],
                        namespace=inputs.namespace,
                        canary_traffic_percent=inputs.canary_traffic_percent,
                        model_registry=inputs.model_registry,
                    ),
                    cluster,
                )
            with dsl.Else(name="deploy-skipped"):
                skip_step(step="deploy", reason=serving_gate.outputs["reason"]) \
                    .set_display_name("deploy-skipped")
        # kfp.local 2.17 only evaluates a dsl.If condition that has an Else branch.
        with dsl.Else(name="publish-skipped"):
            skip_step(step="publish", reason=model_gate.outputs["reason"]) \
                .set_display_name("publish-skipped")
            # A refused challenger explains itself: its card, marked refused, with the
            # gate's reason and the comparison with the champion (never published).
            model_card(
                model=trained.outputs["model"], evaluation=evaluated.outputs["evaluation"],
                blessing=model_gate.outputs["blessing"],
                run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            ).set_display_name("model-card-refused")
    with dsl.Else(name="training-skipped"):
        skip_step(step="training", reason=data_gate.outputs["reason"]) \
            .set_display_name("training-skipped")


# How tuning runs its trials: "pods" fans them out with dsl.ParallelFor, one run-trial
# task (a pod on a cluster) per candidate; "pool" runs one run-trials task that spreads
# every candidate's folds over a process pool. Compiled (cluster) pipelines use "pods",
# local runs (kfp.local, which starts a process per task and runs at most 2 loop
# iterations at once) "pool". The results, and so the chosen parameters, are the same.
TRIAL_SHAPES = ("pods", "pool")
TRIAL_LOOP_NAME = "trial-loop"


def trial_loop_pipeline(settings: TaskSettings | None = None,
                        cluster: ClusterConfig | None = None, parallelism: int = 8):
    """The trials of the "pods" shape as a pipeline of their own: one DAG task outside.

    Each ``run-trial`` writes its result to the store's fan-in prefix of the run
    (``kfp_mlops.fanin``) and ``select-best`` runs ``.after()`` this DAG task and reads
    them: no ``dsl.Collected``, whose loop outputs KFP resolves only from 2.14.0
    (Kubeflow 1.10 ships 2.5.0), and no ``.after()`` across the loop's context, which
    the SDK refuses. Argo completes the DAG task only after every iteration
    (docs/cluster.md, "Fan-in over a loop"). Built before the pipeline that uses it:
    KFP defines no pipeline inside another's body.
    """

    @dsl.pipeline(name=TRIAL_LOOP_NAME)
    def trial_loop(
        train_data: Input[Dataset], target: str, task: str, candidates: List[str],  # noqa: UP006
        estimator: str, seed: int, store: str, run_id: str,
    ):
        """Cross-validate every candidate, one run-trial task each.

        Args:
            train_data: Training rows (Parquet).
            target: Target column.
            task: classification or regression.
            candidates: make-candidates' list of parameter sets (JSON objects).
            estimator: Estimator name, as for train.
            seed: Seed of the folds and the estimator.
            store: Store URI whose fan-in prefix receives the results.
            run_id: The run's id, naming the fan-in prefix.
        """
        with dsl.ParallelFor(candidates, parallelism=parallelism) as candidate:
            on_cluster(
                run_trial(train_data=train_data, target=target, task=task, params=candidate,
                          estimator=estimator, seed=seed, store=store, run_id=run_id),
                cluster,
            )
        finish_tasks(settings, cluster)

    return trial_loop


def add_tuning_steps(
    *, train_data, target, task, estimator, search_space, n_trials, seed, params,
    trials_as: str = "pods", workers: int = 0, store=None, trial_loop=None,
):
    """Add candidates -> trials -> best to the pipeline being defined; return select-best.

    ``trials_as`` is ``pods`` (``trial_loop``, from :func:`trial_loop_pipeline`, whose
    trials write to ``store``'s fan-in prefix) or ``pool`` (one ``run_trials`` task with
    ``workers`` processes, 0: every usable core). Its ``params`` output is the best
    candidate.
    """
    from kfp_mlops.components.model.tune import run_trials

    if trials_as not in TRIAL_SHAPES:
        raise ValueError(f"trials_as is {trials_as!r}; use one of {', '.join(TRIAL_SHAPES)}")
    if trials_as == "pods" and (trial_loop is None or store is None):
        raise ValueError("the pods shape of tuning needs trial_loop=trial_loop_pipeline(...) "
                         "and the store its trials write to; or use trials_as='pool'")
    candidates = make_candidates(
        task=task, estimator=estimator, search_space=search_space,
        n_trials=n_trials, seed=seed, params=params,
    )
    if trials_as == "pool":
        trials = run_trials(
            train_data=train_data, target=target, task=task, candidates=candidates.output,
            estimator=estimator, seed=seed, workers=workers,
        )
        return select_best(results=trials.output, candidates=candidates.output)
    trials = trial_loop(
        train_data=train_data, target=target, task=task, candidates=candidates.output,
        estimator=estimator, seed=seed, store=store, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    return select_best(
        results=[], candidates=candidates.output, store=store,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    ).after(trials)
