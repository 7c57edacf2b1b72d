"""``kfp-mlops serve`` (KServe ModelServer, locally) and ``kfp-mlops score`` (batch)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from kfp_mlops.app.commands.common import (
    CliError,
    add_output,
    add_runner,
    add_store,
    emit,
    plan_containers,
    store_uri,
    task_settings,
)
from kfp_mlops.app.local.runner import with_local_tasks

SERVE_CACHE = ".kfp-mlops/serving"


def serve_command(args: argparse.Namespace) -> int:
    """Fetch a registry version (sha256 checked) and serve it until interrupted."""
    from kfp_mlops.extras import MissingExtraError, require_kserve

    try:
        require_kserve("`kfp-mlops serve`")
    except MissingExtraError as exc:
        raise CliError(str(exc)) from None
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.serving.example import example_request
    from kfp_mlops.serving.server import max_body_bytes, serve
    from kfp_mlops.storage import open_store

    try:
        max_body = max_body_bytes(args.max_body_size)
    except ValueError as exc:
        raise CliError(f"--max-body-size: {exc}") from None
    check_port(args.host, args.port)  # before the download: a busy port is said at once

    store = open_store(store_uri(args))
    registry = Registry(store)
    version = registry.get(args.ref)
    folder = Path(SERVE_CACHE) / version.name / str(version.version)
    shutil.rmtree(folder, ignore_errors=True)
    registry.download(version.ref, folder)
    base = f"http://{args.host}:{args.port}"
    print(
        f"serving {version.ref} ({version.stage}) at {base}\n"
        f"  V1: POST {base}/v1/models/{version.name}:predict\n"
        f"  V2: POST {base}/v2/models/{version.name}/infer\n"
        f"  metrics: {base}/metrics   (Ctrl-C stops)\n"
        f"try it (typical values of the training data):\n"
        f"  {example_request(store, version.metadata, base, version.name)}",
        file=sys.stderr, flush=True,
    )
    log_to = None
    if args.log_to is not None:
        log_to = args.log_to or store.uri  # --log-to alone: the store served from
        where = (f"as CloudEvents to {log_to}" if log_to.startswith(("http://", "https://"))
                 else f"to {log_to}/predictions/{version.name}/{version.version}/"
                 "date=YYYY-MM-DD/ (micro-batches; all at Ctrl-C)")
        print(f"logging every answered request {where}", file=sys.stderr, flush=True)
    serve(folder, model_name=version.name, http_port=args.port, host=args.host,
          max_body=max_body, ignore_unknown_columns=args.ignore_unknown_columns or None,
          log_to=log_to, model_version=str(version.version))
    return 0


def check_port(host: str, port: int) -> None:
    """Refuse a port that is not a TCP port, or one that is in use, naming the fix.

    The server would otherwise fail after loading the model, with a traceback and exit
    status 3 (uvicorn's). A bind probe, as the server binds (SO_REUSEADDR): a port
    taken between this check and the server's start is still the server's error.
    """
    import errno
    import socket

    if not 1 <= port <= 65535:
        raise CliError(f"--port {port} is not a TCP port; give a number from 1 to 65535, "
                       "e.g. --port 8080")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CliError(f"--host {host!r} cannot be resolved ({exc.strerror}); give an "
                       "address such as 127.0.0.1 or 0.0.0.0") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} on {host} is already in use (another server, or "
                               "a `kfp-mlops serve` still running); stop it or choose another "
                               "port with --port") from None
            if exc.errno == errno.EACCES:
                raise CliError(f"port {port} on {host} needs privileges this user lacks "
                               "(ports below 1024); use a port from 1024, e.g. --port 8080"
                               ) from None
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}; check --host "
                           "and --port") from None


def _data_argument(args: argparse.Namespace) -> str:
    data = args.data_path or args.data
    if not data or (args.data_path and args.data and args.data_path != args.data):
        raise CliError("give the data once: `kfp-mlops score REF DATA` or `--data DATA` "
                       "(a file, a folder or glob of Parquet files, or an s3:// URI)")
    return data


@with_local_tasks
def score_command(args: argparse.Namespace) -> int:
    """Run the batch inference pipeline with kfp.local and copy out the predictions.

    A folder, glob or ``s3://bucket/prefix/`` of Parquet files runs the sharded shape:
    one part file per shard under ``--out``, ``_SUCCESS`` last.
    """
    from kfp_mlops.data.shards import is_sharded_source

    data = _data_argument(args)
    if is_sharded_source(data):
        return _score_sharded(args, data)
    from kfp_mlops.app.console import capture_run_output
    from kfp_mlops.app.local.runner import run_locally
    from kfp_mlops.pipelines.batch import build_batch_pipeline

    runs_dir = Path(args.runs_dir)
    arguments, containers = plan_containers(args, {
        "data": data, "model": args.ref, "store": store_uri(args),
        "with_probabilities": args.probabilities, "keep_columns": args.keep_columns,
        "ignore_unknown_columns": args.ignore_unknown_columns})
    with capture_run_output(runs_dir / "last-run.log", args.output == "text") as log:
        run = run_locally(build_batch_pipeline(settings=task_settings(args)), arguments,
                          runs_dir, containers)
    if not run.succeeded:
        raise CliError(
            f"batch scoring failed: {log.last_error or run.error}. No predictions were written."
        )
    task = run.tasks["batch-predict"]
    produced = Path(task.artifacts["predictions"]["uri"])
    target = Path(args.out) if args.out else produced
    if args.out:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced, target)
    payload = {"rows": task.parameters["Output"], "predictions": str(target),
               "model": args.ref, "run_dir": str(run.run_dir)}
    emit(args, payload, f"scored {payload['rows']} rows with {args.ref} -> {target}")
    return 0


def _score_sharded(args: argparse.Namespace, data: str) -> int:
    import time

    from kfp_mlops.app.console import capture_run_output
    from kfp_mlops.app.local.runner import run_locally
    from kfp_mlops.data.shards import DEFAULT_SHARD_ROWS
    from kfp_mlops.pipelines.batch import build_batch_pipeline

    if args.shard_rows is None:
        args.shard_rows = DEFAULT_SHARD_ROWS
    if args.shard_rows < 1:
        raise CliError(f"--shard-rows is {args.shard_rows}; give a positive number of rows")
    if args.workers < 0:
        raise CliError(f"--workers is {args.workers}; give 0 (every core) or more")
    # Task processes may run elsewhere than here: hand them absolute paths.
    local = not data.startswith("s3://")
    source = str(Path(data).expanduser().absolute()) if local and not any(
        c in data for c in "*?[") else data
    output = args.out or ""
    if output and not output.startswith("s3://"):
        output = str(Path(output).expanduser().absolute())
    runs_dir = Path(args.runs_dir)
    started = time.perf_counter()
    arguments, containers = plan_containers(args, {
        "data": source, "model": args.ref, "store": store_uri(args), "output": output,
        "shard_rows": args.shard_rows, "workers": args.workers,
        "with_probabilities": args.probabilities, "keep_columns": args.keep_columns,
        "ignore_unknown_columns": args.ignore_unknown_columns}, outputs=("store", "output"))
    with capture_run_output(runs_dir / "last-run.log", args.output == "text") as log:
        run = run_locally(build_batch_pipeline(sharded=True, settings=task_settings(args)),
                          arguments, runs_dir, containers)
    if not run.succeeded:
        raise CliError(f"batch scoring failed: {log.last_error or run.error}. Nothing was "
                       "committed (no _SUCCESS); rerun to replace any part files written.")
    seconds = time.perf_counter() - started
    manifest = run.tasks["collect-predictions"].artifacts["manifest"]["metadata"]
    payload = {"rows": manifest["rows"], "shards": manifest["shards"],
               "predictions": manifest["output"], "model": manifest["model"],
               "seconds": round(seconds, 1), "run_dir": str(run.run_dir)}
    emit(args, payload, (
        f"scored {payload['rows']:,} rows in {payload['shards']} shard"
        f"{'s' if payload['shards'] != 1 else ''} with {payload['model']} ({args.ref}) in "
        f"{seconds:.1f} s\n"
        f"  -> {payload['predictions']}/part-*.parquet, committed by _SUCCESS"))
    return 0


def register(commands) -> None:
    """Add ``serve`` and ``score``."""
    from kfp_mlops.app.local.runner import DEFAULT_RUNS_DIR

    serve = commands.add_parser(
        "serve", help="serve a registry version with KServe's ModelServer (V1 and V2)",
        description="Serve NAME, NAME@VERSION or NAME@STAGE locally with the suite's KServe "
        "predictor: V1 and V2 REST, input checked against the model's schema, Prometheus "
        "metrics on /metrics.",
    )
    serve.add_argument("ref", help="e.g. penguins@production")
    serve.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument(
        "--max-body-size", default=None, metavar="SIZE",
        help="largest request body accepted, e.g. 16MiB; larger ones get HTTP 413 "
        "(default: $KFP_MLOPS_MAX_BODY_SIZE, else 16MiB)",
    )
    serve.add_argument(
        "--ignore-unknown-columns", action="store_true",
        help="ignore request fields that are neither features, the target nor columns "
        "training dropped (default: $KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS, else refuse them "
        "by name: a typo guard)",
    )
    serve.add_argument(
        "--log-to", nargs="?", const="", default=None, metavar="STORE",
        help="log every answered request, its rows and predictions to STORE's prediction "
        "log (predictions/<model>/<version>/date=.../, as the log sink does on a cluster), "
        "or send them as KServe's logger CloudEvents to a log sink's http:// URL; without "
        "STORE, the --store served from (default: no logging)",
    )
    add_store(serve)
    serve.set_defaults(handler=serve_command, output="text")

    score = commands.add_parser(
        "score", help="batch-score a CSV/Parquet file or a prefix of Parquet files with a "
        "registry version (kfp.local)",
    )
    score.add_argument("ref", help="NAME, NAME@VERSION or NAME@STAGE")
    score.add_argument("data_path", nargs="?", metavar="DATA",
                       help="the data, as --data takes it (give one of the two)")
    score.add_argument("--data", help="CSV/Parquet path or s3:// URI; a folder, glob or "
                       "s3://bucket/prefix/ of Parquet files is scored shard by shard")
    score.add_argument("--out", help="where to copy the predictions Parquet; for a sharded "
                       "source the output folder or s3:// prefix (default: "
                       "STORE/predictions/RUN)")
    # No default here: reading DEFAULT_SHARD_ROWS imports numpy and pyarrow (0.3-0.5 s),
    # which every command's parser would pay; as `data profile` and `monitor` do.
    score.add_argument("--shard-rows", type=int, metavar="N",
                       help="most rows in one shard of a sharded source (default 5000000)")
    score.add_argument("--workers", type=int, default=0, metavar="N",
                       help="processes scoring shards at once (default 0: every usable core)")
    score.add_argument("--probabilities", action="store_true", help="add proba_<class> columns")
    score.add_argument("--keep-columns", default="", help="input columns to copy (comma-separated)")
    score.add_argument(
        "--ignore-unknown-columns", action="store_true",
        help="ignore input columns that are neither features, the target, columns training "
        "dropped nor --keep-columns (default: refuse them by name, as serve does)",
    )
    score.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                       help="where kfp.local keeps run outputs")
    add_store(score)
    add_runner(score)
    add_output(score)
    score.set_defaults(handler=score_command)
