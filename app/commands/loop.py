"""``kfp-mlops monitor`` and ``kfp-mlops continuous``: the drift -> retrain loop, locally."""

from __future__ import annotations

import argparse

from kfp_mlops.app.commands.common import (
    CliError,
    add_output,
    add_runner,
    add_store,
    store_uri,
    task_settings,
)
from kfp_mlops.app.commands.run import add_training_flags, execute, training_arguments
from kfp_mlops.app.local.runner import with_local_tasks


def sharded(data: str, shard_rows: int | None) -> bool:
    """Whether ``kfp-mlops monitor`` scans ``data`` in shards.

    A folder, glob or S3 prefix always is (it is many files); one Parquet file is when
    ``--shard-rows`` is given and its footer counts more rows. A prediction log window
    (``predictions:...``) never is.
    """
    from kfp_mlops.data.shards import is_sharded_source

    if data.startswith("predictions:"):
        return False
    if is_sharded_source(data):
        return True
    if shard_rows is None or not data.endswith(".parquet") or data.startswith("s3://"):
        return False
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(data).metadata.num_rows > shard_rows
    except OSError:
        return False  # the pipeline's ingest says what is wrong with the file


def resolve_data(args: argparse.Namespace) -> None:
    """Turn ``--since/--until/--window`` into the ``predictions:`` source of ``--data``."""
    from kfp_mlops.errors import DataError
    from kfp_mlops.live.logged import window_source

    windowed = args.since or args.until or args.window
    if windowed and args.data:
        raise CliError("give --data (a batch file) or --since/--until/--window (the "
                       "prediction log of --model), not both")
    if not windowed:
        if not args.data:
            raise CliError("say what to monitor: --data FILE, or the prediction log of "
                           "--model NAME with --since/--until or --window (e.g. 7d)")
        return
    if not args.model_name:
        raise CliError("a prediction log window needs --model NAME: whose logs to read")
    try:
        args.data = window_source(args.model_name, since=args.since, until=args.until,
                                  window=args.window, store=store_uri(args))
    except DataError as exc:
        raise CliError(str(exc)) from None


def add_window_flags(parser: argparse.ArgumentParser) -> None:
    """``--since``, ``--until``, ``--window``: monitor the prediction log instead of a file."""
    parser.add_argument("--since", help="prediction log window start, ISO date or time "
                        "(UTC unless given), e.g. 2026-11-01 (default: no window)")
    parser.add_argument("--until", help="window end, exclusive (default: now)")
    parser.add_argument("--window", help="the window as a duration before --until, e.g. 7d, "
                        "12h (default: --since)")


def monitor_command(args: argparse.Namespace) -> int:
    """Run the monitoring pipeline on one batch (flags checked before any task starts)."""
    from kfp_mlops.model.registry import validate_name

    if args.model_name:
        validate_name(args.model_name)
    resolve_data(args)
    return _monitor(args)


@with_local_tasks
def _monitor(args: argparse.Namespace) -> int:
    from kfp_mlops.data.shards import DEFAULT_SHARD_ROWS

    arguments = {"data": args.data, "model_name": args.model_name, "store": store_uri(args),
                 "drift_share": args.drift_share, "pushgateway": args.pushgateway or "",
                 "estimated_drop": args.estimated_drop or 0.0}
    title = f"monitoring {args.data!r} against {args.model_name}@production"
    if sharded(args.data, args.shard_rows):
        from kfp_mlops.pipelines.sharded_monitoring import (
            SHARDED_MONITORING_TASKS,
            build_sharded_monitoring_pipeline,
        )

        arguments["shard_rows"] = args.shard_rows or DEFAULT_SHARD_ROWS
        pipeline = build_sharded_monitoring_pipeline(settings=task_settings(args))
        return execute(args, pipeline, arguments,
                       f"{title}, in shards of at most {arguments['shard_rows']:,} rows",
                       len(SHARDED_MONITORING_TASKS))
    from kfp_mlops.pipelines.monitoring import MONITORING_TASKS, build_monitoring_pipeline

    pipeline = build_monitoring_pipeline(settings=task_settings(args))
    return execute(args, pipeline, arguments, title, len(MONITORING_TASKS))


def continuous_command(args: argparse.Namespace) -> int:
    """Run the continuous training pipeline on one batch (flags checked first)."""
    if not args.model_name:
        raise CliError("continuous training needs --model-name: the model whose production "
                       "version the batch is compared with")
    if args.data is None and not (args.since or args.until or args.window):
        from kfp_mlops.data.bundled import DEFAULT_DATASET

        args.data = DEFAULT_DATASET
    resolve_data(args)
    return _continuous(args)


@with_local_tasks
def _continuous(args: argparse.Namespace) -> int:
    from kfp_mlops.pipelines.continuous import build_continuous_pipeline
    from kfp_mlops.pipelines.monitoring import MONITORING_TASKS
    from kfp_mlops.pipelines.training import planned_tasks

    _reuse_first_settings(args)
    pipeline = build_continuous_pipeline(settings=task_settings(args))
    arguments = training_arguments(args, pipeline, force=args.force,
                                   drift_share=args.drift_share, pushgateway=args.pushgateway or "",
                                   estimated_drop=args.estimated_drop or 0.0)
    return execute(args, pipeline, arguments,
                   f"continuous training of {args.model_name} on {args.data!r}",
                   len(MONITORING_TASKS) + planned_tasks(args.n_trials or 0))


def _reuse_first_settings(args: argparse.Namespace) -> None:
    """Fill every training flag not given from the model's first settings, and say which.

    The blessing policy is reused only when none of --quality-metric,
    --quality-threshold and --blessing-policy is given (they are one setting).
    """
    import json
    import sys

    from kfp_mlops.model.remembered import recall
    from kfp_mlops.storage import open_store

    stored = recall(open_store(store_uri(args)), args.model_name)
    reused = {}
    for name in ("target", "task", "estimator", "test_size", "seed", "n_trials"):
        if getattr(args, name) is None and stored.get(name) is not None:
            setattr(args, name, stored[name])
            reused[name] = stored[name]
    if args.params is None and stored.get("params"):
        args.params = json.dumps(stored["params"])
        reused["params"] = args.params
    gate_given = (args.quality_metric, args.quality_threshold, args.blessing_policy)
    if all(v is None for v in gate_given) and stored.get("blessing_policy"):
        args.blessing_policy = stored["blessing_policy"]
        reused["blessing policy"] = args.blessing_policy
    args.reused_settings = reused  # the JSON summary's reused_settings
    if reused and args.output == "text":
        said = ", ".join(f"{k} {v}" for k, v in reused.items())
        print(f"kfp-mlops continuous: reusing {args.model_name}'s first training settings "
              f"(a flag overrides each): {said}", file=sys.stderr)


def _drop(text: str) -> float:
    """``--estimated-drop``: a number above 0 and below 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a drop between 0 and 1; write e.g. 0.05 (5 points of accuracy, "
            "or 5% more error)")
    return value


def register(commands) -> None:
    """Add ``monitor`` and ``continuous``."""
    from kfp_mlops.app.local.runner import DEFAULT_RUNS_DIR

    mon = commands.add_parser(
        "monitor", help="drift, data quality and performance of a batch (kfp.local)",
    )
    mon.add_argument("--data",
                     help="the batch: path, s3:// URI or bundled name (or give a prediction "
                     "log window instead); a folder, glob or s3://bucket/prefix/ of Parquet "
                     "files is scanned in shards")
    mon.add_argument("--shard-rows", type=int, metavar="N",
                     help="at most N rows a shard (default 5,000,000); a Parquet file with "
                     "more rows is scanned in shards too")
    mon.add_argument("--model-name", "--model", required=True,
                     help="its production version is the reference")
    add_window_flags(mon)
    mon.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                     help="where kfp.local keeps run outputs and reports")
    add_store(mon)
    add_runner(mon)
    add_output(mon)

    cont = commands.add_parser(
        "continuous", help="monitor a batch and retrain on drift (kfp.local)",
        description="The continuous training loop on one batch: monitor -> if drift, forced, "
        "or no production model: ingest, validate, train, bless, infra-validate, deploy, "
        "promote. Every skip is explained in the summary.",
    )
    add_training_flags(cont)
    cont.add_argument("--force", action="store_true", help="retrain even without drift")
    add_window_flags(cont)
    cont.set_defaults(data=None)

    for parser in (mon, cont):
        parser.add_argument("--drift-share", type=float, default=0.5,
                            help="share of drifted features that means drift (default 0.5)")
        parser.add_argument("--pushgateway", help="push the drift and model-quality gauges "
                            "to this Pushgateway")
        parser.add_argument("--estimated-drop", type=_drop, metavar="D",
                            help="also retrain when accuracy (MAE for regression) is this "
                            "much worse than on the production version's test rows: "
                            "estimated without labels, realized once labels cover the batch "
                            "(e.g. 0.05: 5 points of accuracy, or 5%% more error; default: "
                            "drift alone decides)")
    mon.set_defaults(handler=monitor_command)
    cont.set_defaults(handler=continuous_command)
