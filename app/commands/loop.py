"""``kfp-mlops monitor`` and ``kfp-mlops continuous``: the drift -> retrain loop, locally."""

from __future__ import annotations

import argparse

from kfp_mlops.app.commands.common import CliError, add_output, add_store, store_uri
from kfp_mlops.app.commands.run import add_training_flags, execute, training_arguments
from kfp_mlops.pipelines.local import with_local_tasks


def sharded(data: str, shard_rows: int | None) -> bool:
    """Whether ``kfp-mlops monitor`` scans ``data`` in shards.

    A folder, glob or S3 prefix always is (it is many files); one Parquet file is when
    ``--shard-rows`` is given and its footer counts more rows.
    """
    from kfp_mlops.data.shards import is_sharded_source

    if is_sharded_source(data):
        return True
    if shard_rows is None or not data.endswith(".parquet") or data.startswith("s3://"):
        return False
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(data).metadata.num_rows > shard_rows
    except OSError:
        return False  # the pipeline's ingest says what is wrong with the file


@with_local_tasks
def monitor_command(args: argparse.Namespace) -> int:
    """Run the monitoring pipeline on one batch (the sharded one on a Parquet prefix)."""
    from kfp_mlops.data.shards import DEFAULT_SHARD_ROWS

    arguments = {"data": args.data, "model_name": args.model_name, "store": store_uri(args),
                 "drift_share": args.drift_share, "pushgateway": args.pushgateway or ""}
    title = f"monitoring {args.data!r} against {args.model_name}@production"
    if sharded(args.data, args.shard_rows):
        from kfp_mlops.pipelines.sharded_monitoring import (
            SHARDED_MONITORING_TASKS,
            build_sharded_monitoring_pipeline,
        )

        arguments["shard_rows"] = args.shard_rows or DEFAULT_SHARD_ROWS
        return execute(args, build_sharded_monitoring_pipeline(), arguments,
                       f"{title}, in shards of at most {arguments['shard_rows']:,} rows",
                       len(SHARDED_MONITORING_TASKS))
    from kfp_mlops.pipelines.monitoring import MONITORING_TASKS, build_monitoring_pipeline

    return execute(args, build_monitoring_pipeline(), arguments, title, len(MONITORING_TASKS))


@with_local_tasks
def continuous_command(args: argparse.Namespace) -> int:
    """Run the continuous training pipeline on one batch."""
    from kfp_mlops.pipelines.continuous import build_continuous_pipeline
    from kfp_mlops.pipelines.monitoring import MONITORING_TASKS
    from kfp_mlops.pipelines.training import planned_tasks

    if not args.model_name:
        raise CliError("continuous training needs --model-name: the model whose production "
                       "version the batch is compared with")
    pipeline = build_continuous_pipeline()
    arguments = training_arguments(args, pipeline, force=args.force,
                                   drift_share=args.drift_share, pushgateway=args.pushgateway or "")
    return execute(args, pipeline, arguments,
                   f"continuous training of {args.model_name} on {args.data!r}",
                   len(MONITORING_TASKS) + planned_tasks(args.n_trials))


def register(commands) -> None:
    """Add ``monitor`` and ``continuous``."""
    from kfp_mlops.pipelines.local import DEFAULT_RUNS_DIR

    mon = commands.add_parser(
        "monitor", help="drift, data quality and performance of a batch (kfp.local)",
    )
    mon.add_argument("--data", required=True,
                     help="the batch: path, s3:// URI or bundled name; a folder, glob or "
                     "s3://bucket/prefix/ of Parquet files is scanned in shards")
    mon.add_argument("--shard-rows", type=int, metavar="N",
                     help="at most N rows a shard (default 5,000,000); a Parquet file with "
                     "more rows is scanned in shards too")
    mon.add_argument("--model-name", required=True, help="its production version is the reference")
    mon.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                     help="where kfp.local keeps run outputs and reports")
    add_store(mon)
    add_output(mon)

    cont = commands.add_parser(
        "continuous", help="monitor a batch and retrain on drift (kfp.local)",
        description="The continuous training loop on one batch: monitor -> if drift, forced, "
        "or no production model: ingest, validate, train, bless, infra-validate, deploy, "
        "promote. Every skip is explained in the summary.",
    )
    add_training_flags(cont)
    cont.add_argument("--force", action="store_true", help="retrain even without drift")

    for parser in (mon, cont):
        parser.add_argument("--drift-share", type=float, default=0.5,
                            help="share of drifted features that means drift (default 0.5)")
        parser.add_argument("--pushgateway", help="push the drift gauges to this Pushgateway")
    mon.set_defaults(handler=monitor_command)
    cont.set_defaults(handler=continuous_command)
