"""``kfp-mlops run``: the training pipeline on kfp.local, with progress and a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfp_mlops.app.commands.common import (
    EXIT_GATE_STOPPED,
    CliError,
    UsageError,
    add_output,
    add_runner,
    add_store,
    emit,
    plan_containers,
    store_uri,
    task_settings,
)
from kfp_mlops.app.local.runner import with_local_tasks


def execute(
    args: argparse.Namespace, pipeline, arguments: dict, title: str, planned: int | None = None
) -> int:
    """Run ``pipeline`` on kfp.local with progress, then print the run summary.

    ``planned`` is how many tasks a run that passes every gate runs (the progress total).
    With ``--runner docker`` each task runs in a container from the image, with the
    ``data`` argument's file or folder mounted read-only and a local ``store`` read-write.
    Returns :data:`EXIT_GATE_STOPPED` when a gate stopped the run, else 0.
    """
    from kfp_mlops.app.console import capture_run_output, format_summary
    from kfp_mlops.app.local.runner import display_names, run_locally
    from kfp_mlops.pipelines.training import summarize_training
    from kfp_mlops.storage import StoreError, open_store

    arguments, containers = plan_containers(args, arguments)
    if containers is not None:
        title = f"{title}, each task in a container from {containers.image}"

    # Fail before training, not after, when the store cannot be reached or written.
    store = open_store(arguments["store"])
    try:
        store.ensure_ready()
        before = _publications(store)
    except StoreError as exc:
        raise exc.with_detail("No task was run; nothing was published.") from exc
    runs_dir = Path(args.runs_dir)
    log_path = runs_dir / "last-run.log"
    if args.output == "text":
        print(f"kfp-mlops {args.command}: {title}, store {arguments['store']}", file=sys.stderr)
    names = display_names(pipeline)
    with capture_run_output(log_path, args.output == "text", planned, names) as log:
        run = run_locally(pipeline, arguments, runs_dir, containers)
    final_log = run.run_dir / "run.log" if run.run_dir != runs_dir.resolve() else log_path
    if final_log != log_path:
        log_path.replace(final_log)
    if not run.succeeded:
        raise CliError(
            f"the pipeline failed in task {names.get(log.failed_task, log.failed_task or '?')}: "
            f"{log.last_error or run.error}. {_published_text(store, before)} "
            f"Full log: {final_log}"
        )
    summary = summarize_training(run, names)
    _remember_settings(store, summary, arguments)
    if getattr(args, "reused_settings", None) is not None:  # continuous (loop.py)
        summary["reused_settings"] = args.reused_settings
    summary["log"] = str(final_log)
    summary["task_seconds"] = log.durations
    _report_model_registry(args, store, summary)
    emit(args, summary, format_summary(summary))
    return EXIT_GATE_STOPPED if summary["stopped_by"] else 0


def _report_model_registry(args: argparse.Namespace, store, summary: dict) -> None:
    """Say when the run's Kubeflow Model Registry writes failed, and the command that finishes them.

    The publish and deploy tasks record a failed write in the store (their warning is in
    the run log); the run summary repeats it where people and scripts look.
    """
    from kfp_mlops.model.kubeflow_registry import pending

    name = summary.get("model_name")
    behind = pending(store, name) if name and name != "auto" else None
    if behind is None:
        return
    summary["model_registry_pending"] = behind
    print(f"kfp-mlops {args.command}: warning: published in the store, but the Kubeflow Model "
          f"Registry does not show it yet ({behind.get('error')}); finish it with: "
          f"{behind.get('command')}", file=sys.stderr)


def _remember_settings(store, summary: dict, arguments: dict) -> None:
    """Keep the settings of a model name's first published version (model/remembered.py)."""
    import json

    from kfp_mlops.model.remembered import remember
    from kfp_mlops.model.settings import chosen

    if summary.get("version") is None or not summary.get("model_name") or \
            "estimator" not in arguments:
        return
    params = arguments.get("params") or "{}"
    remember(store, summary["model_name"], {
        "target": summary.get("target"), "task": summary.get("task"),
        "estimator": chosen(arguments.get("estimator")),
        "params": json.loads(params) if isinstance(params, str) else params,
        "test_size": arguments.get("test_size"), "seed": arguments.get("seed"),
        "n_trials": arguments.get("n_trials"),
        "blessing_policy": summary.get("blessing_policy"),
    })


def _publications(store) -> set[tuple[str, str]]:
    """What the store holds, committed, as ``(kind, name)`` pairs (one listing).

    Dataset and schema versions, model versions, and stage changes (their commits).
    """
    found = set()
    for key in store.list():
        parts = key.split("/")
        if parts[0] == "datasets" and len(parts) == 3 and parts[2] == "metadata.json":
            found.add(("dataset version", parts[1]))
        elif parts[0] == "schemas" and len(parts) == 4 and parts[3] == "schema.yaml":
            found.add(("schema", f"{parts[1]} version {parts[2]}"))
        elif parts[0] == "models" and len(parts) == 4 and parts[3] == "metadata.json":
            found.add(("model", f"{parts[1]}@{parts[2]}"))
        elif parts[0] == "models" and parts[2:3] == ["next"] and (
            len(parts) == 4 or (len(parts) == 5 and parts[4] == "won")
        ):
            found.add(("stage change", f"{parts[1]}/{parts[3]}"))
    return found


def _published_text(store, before: set[tuple[str, str]]) -> str:
    """What a failed run published, said plainly, from the store's own contents."""
    from kfp_mlops.storage import StoreError

    try:
        new = _publications(store) - before
    except StoreError as exc:
        return (
            f"What the run published before failing could not be checked ({exc}); see "
            "`kfp-mlops data list` and `kfp-mlops models list`."
        )
    if not new:
        return "Nothing was published."
    kinds: dict[str, list[str]] = {}
    for kind, name in sorted(new):
        kinds.setdefault(kind, []).append(name)
    said = []
    for kind, names in kinds.items():
        if kind == "stage change":
            models = sorted({n.split("/")[0] for n in names})
            said.append(f"stage changes of {', '.join(models)} (see `kfp-mlops models list`)")
        else:
            said.append(f"{kind}{'s' if len(names) > 1 else ''} {', '.join(names)}")
    return f"Published in the store since the run started: {'; '.join(said)}."


def training_arguments(args: argparse.Namespace, pipeline, **others) -> dict:
    """``pipeline``'s arguments from the training flags and ``others``.

    The flags become the settings once, validated before any task runs (a bad value
    stops the command with the settings' message, not a failed task later).
    """
    from kfp_mlops.data.width import wide_file_warning
    from kfp_mlops.model.package import signing_key
    from kfp_mlops.model.registry import validate_name
    from kfp_mlops.model.run_parameters import settings_parameters
    from kfp_mlops.model.settings import (
        BlessingSettings,
        TrainingSettings,
        UnknownMetricError,
    )
    from kfp_mlops.pipelines.steps import pipeline_arguments

    if args.data:
        warning = wide_file_warning(str(args.data))
        if warning:
            print(f"kfp-mlops {args.command}: warning: {warning}", file=sys.stderr, flush=True)
    if args.model_name:
        # Before any task: ingest would store a dataset version, then publish refuse it.
        validate_name(args.model_name)
    signing_key()  # an empty or short key fails here, not at publish after training

    # One flag per training run parameter, under its name (`continuous` has no
    # --search-space).
    given = {name: vars(args).get(name) for name in settings_parameters("training")}
    # A flag left out keeps the settings' default.
    training = TrainingSettings.from_parameters(
        **{k: v for k, v in given.items() if v is not None})
    blessing = BlessingSettings.from_parameters(
        args.quality_metric, args.quality_threshold, args.blessing_policy)
    try:
        blessing.check_reported(training.task)
    except UnknownMetricError as exc:
        raise UsageError(f"{exc}. No task was run.") from None
    return pipeline_arguments(
        pipeline, training, blessing, data=args.data, store=store_uri(args),
        model_name=args.model_name or "auto", force_new_version=args.force_new_version,
        model_registry=_model_registry(args), **others,
    )


def _model_registry(args: argparse.Namespace) -> str:
    """The Kubeflow Model Registry the run's publish and deploy steps mirror into ('': none)."""
    from kfp_mlops.model.kubeflow_registry import resolve_url

    return resolve_url(getattr(args, "model_registry", None)) or ""


@with_local_tasks
def run_command(args: argparse.Namespace) -> int:
    """Run the training pipeline locally with kfp.local and summarise it."""
    from kfp_mlops.app.local.runner import import_kfp_without_client

    import_kfp_without_client()  # before the pipeline module imports kfp.dsl
    from kfp_mlops.pipelines.training import build_training_pipeline, planned_tasks

    pipeline = build_training_pipeline(settings=task_settings(args))
    arguments = training_arguments(args, pipeline, update_schema=args.update_schema,
                                   warn_only=args.warn_only)
    return execute(args, pipeline, arguments, f"training on {args.data!r}",
                   planned_tasks(args.n_trials or 0))


def add_training_flags(run: argparse.ArgumentParser) -> None:
    """The flags shared by ``run`` and ``continuous``."""
    from kfp_mlops.app.local.runner import DEFAULT_RUNS_DIR
    from kfp_mlops.data.bundled import BUNDLED, DEFAULT_DATASET
    from kfp_mlops.model.settings import AUTO, DEFAULT_THRESHOLD, TrainingSettings

    defaults = TrainingSettings()

    run.add_argument(
        "--data", default=DEFAULT_DATASET,
        help=f"CSV/Parquet path, s3:// URI, or bundled data set ({', '.join(BUNDLED)}); "
        f"default {DEFAULT_DATASET}",
    )
    run.add_argument("--target", help="target column (bundled data sets know theirs)")
    run.add_argument("--task", choices=["classification", "regression"],
                     help="default: inferred from the target")
    run.add_argument("--model-name", help="registry name (default: from the data's name)")
    # Defaults are None ("not given"): `continuous` then reuses the model's first
    # settings (model/remembered.py); the help says the value a first run uses.
    run.add_argument("--estimator",
                     help=f"{AUTO} (hist_gradient_boosting, the default), random_forest, "
                     "logistic_regression, ridge, xgboost, lightgbm, or any scikit-learn-"
                     "compatible class by import path: xgboost.XGBClassifier, "
                     "lightgbm.LGBMRegressor, mypackage.models:MyEstimator")
    run.add_argument("--params", help='estimator parameters as JSON, e.g. \'{"max_depth": 3}\'')
    run.add_argument("--test-size", type=float,
                     help=f"held-out share (default {defaults.test_size})")
    run.add_argument("--seed", type=int,
                     help=f"random seed (default {defaults.seed})")
    run.add_argument("--quality-metric",
                     help="metric the model gate judges (default accuracy / r2)")
    run.add_argument("--quality-threshold", type=float,
                     help=f"its threshold (default {DEFAULT_THRESHOLD['classification']} "
                     f"accuracy / {DEFAULT_THRESHOLD['regression']} r2)")
    run.add_argument("--blessing-policy",
                     help="full policy replacing the two above, e.g. "
                     "'accuracy>=0.8,f1_macro>=0.7;tolerance=0.01'")
    run.add_argument("--n-trials", type=int,
                     help="tune: cross-validate this many candidates in parallel tasks, train "
                     f"the best (default {defaults.n_trials}: no tuning)")
    run.add_argument("--force-new-version", action="store_true",
                     help="publish even when a published version was trained from the same "
                     "data, settings and code (default: say which one and publish nothing)")
    run.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                     help=f"where kfp.local keeps run outputs (default {DEFAULT_RUNS_DIR})")
    add_store(run)
    add_runner(run)
    add_output(run)
    from kfp_mlops.app.commands.models import add_model_registry

    add_model_registry(run)


def register(commands) -> None:
    """Add the ``run`` command."""
    from kfp_mlops.data.bundled import DEFAULT_DATASET

    run = commands.add_parser(
        "run", help="run the training pipeline locally (kfp.local)",
        description="Run the training pipeline with kfp.local: ingest (dataset version), "
        "check, statistics, validate against the stored schema, split, train, evaluate, "
        "bless against the production model, publish, infra-validate, deploy/promote. With "
        f"no arguments it trains on the bundled {DEFAULT_DATASET!r} data into the local store.",
    )
    add_training_flags(run)
    run.add_argument("--update-schema", action="store_true",
                     help="re-infer the stored schema from this data (explicit, never silent)")
    run.add_argument("--search-space", default="auto",
                     help='tuning grid as JSON, e.g. \'{"max_depth": [3, 5, 8]}\' '
                     "(default: one per estimator)")
    run.add_argument("--warn-only", action="store_true",
                     help="data anomalies are warnings: the data gate passes")
    run.set_defaults(handler=run_command)
