"""The ``kfp-mlops`` command line.

Conventions every command follows: ``--store`` (default ``$KFP_MLOPS_STORE``, else
``./mlops-store``) where the store is read or written, ``--output text|json``, exit
status 0 on success and non-zero with a one-paragraph message on error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp_mlops.storage import DEFAULT_LOCAL_STORE, DEFAULT_STORE_ENV, default_store_uri


class CliError(Exception):
    """An error the user can fix; printed as one paragraph, exit status 1."""


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", choices=["text", "json"], default="text",
        help="text for people (default), json for scripts (one object on stdout)",
    )


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", default=None,
        help=f"store URI: a local folder or s3://bucket/prefix (default: ${DEFAULT_STORE_ENV}, "
        f"else {DEFAULT_LOCAL_STORE}); S3 uses AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, S3_VERIFY_SSL",
    )


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if args.output == "json":
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


# ---------------------------------------------------------------- run


def _check_store_reachable(uri: str) -> None:
    """Fail before training, not after, when the store cannot be written."""
    from kfp_mlops.storage import LocalStore, S3Store, open_store

    store = open_store(uri)
    if isinstance(store, S3Store):
        store.ensure_bucket()
    elif isinstance(store, LocalStore):
        store._ensure_root()


def cmd_run(args: argparse.Namespace) -> int:
    """Run the training pipeline locally with kfp.local and summarise it."""
    from kfp_mlops.console import capture_run_output, format_summary
    from kfp_mlops.pipelines.local import run_locally
    from kfp_mlops.pipelines.training import build_training_pipeline, summarize_training

    store = args.store or default_store_uri()
    _check_store_reachable(store)
    arguments = {
        "data": args.data, "store": store,
        "target": args.target or "auto", "task": args.task or "auto",
        "model_name": args.model_name or "auto", "estimator": args.estimator,
        "params": args.params or "{}", "test_size": args.test_size, "seed": args.seed,
        "quality_metric": args.quality_metric or "auto",
        "quality_threshold": "auto" if args.quality_threshold is None else str(args.quality_threshold),
    }
    runs_dir = Path(args.runs_dir)
    log_path = runs_dir / "last-run.log"
    if args.output == "text":
        print(f"kfp-mlops run: training on {args.data!r}, store {store}", file=sys.stderr)
    with capture_run_output(log_path, show_progress=args.output == "text") as log:
        run = run_locally(build_training_pipeline(), arguments, runs_dir)
    final_log = run.run_dir / "run.log" if run.run_dir != runs_dir.resolve() else log_path
    if final_log != log_path:
        log_path.replace(final_log)
    if not run.succeeded:
        raise CliError(
            f"the training pipeline failed in task {log.failed_task or '?'}: "
            f"{log.last_error or run.error}. Nothing was published. Full log: {final_log}"
        )
    summary = summarize_training(run)
    summary["log"] = str(final_log)
    _emit(args, summary, format_summary(summary))
    return 0


# ---------------------------------------------------------------- compile


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile every pipeline for a cluster."""
    from kfp_mlops.pipelines.cluster import ClusterConfig
    from kfp_mlops.pipelines.compile import compile_pipelines

    cluster = ClusterConfig(s3_secret=args.s3_secret, s3_endpoint=args.s3_endpoint)
    try:
        written = compile_pipelines(
            args.output_dir, image=args.image, cluster=cluster, namespace=args.namespace,
            names=args.pipeline or None,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    payload = {"image": args.image, "files": [str(p) for p in written]}
    text = "\n".join(
        [f"compiled with image {args.image}:"] + [f"  {p}" for p in written]
        + ["upload the .yaml in the Kubeflow dashboard or `kfp run create -f`; "
           "`kubectl apply -f` the .k8s.yaml"]
    )
    _emit(args, payload, text)
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    from kfp_mlops import __version__
    from kfp_mlops.components.image import DEFAULT_IMAGE
    from kfp_mlops.data.sources import BUNDLED, DEFAULT_DATASET
    from kfp_mlops.pipelines.cluster import DEFAULT_ENDPOINT, DEFAULT_SECRET
    from kfp_mlops.pipelines.local import DEFAULT_RUNS_DIR

    parser = argparse.ArgumentParser(
        prog="kfp-mlops",
        description="Kubeflow Pipelines components for the scikit-learn ML life cycle.",
    )
    parser.add_argument("--version", action="version", version=f"kfp-mlops {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the training pipeline locally (kfp.local)",
        description="Run the training pipeline with kfp.local: ingest, check, split, train, "
        "evaluate, quality gate, publish. With no arguments it trains on the bundled "
        f"{DEFAULT_DATASET!r} data into the local store.",
    )
    run.add_argument(
        "--data", default=DEFAULT_DATASET,
        help=f"CSV/Parquet path, s3:// URI, or bundled data set ({', '.join(BUNDLED)}); "
        f"default {DEFAULT_DATASET}",
    )
    run.add_argument("--target", help="target column (bundled data sets know theirs)")
    run.add_argument("--task", choices=["classification", "regression"],
                     help="default: inferred from the target")
    run.add_argument("--model-name", help="registry name (default: from the data's name)")
    run.add_argument("--estimator", default="auto",
                     help="auto (hist_gradient_boosting), random_forest, logistic_regression, ridge")
    run.add_argument("--params", help='estimator parameters as JSON, e.g. \'{"max_depth": 3}\'')
    run.add_argument("--test-size", type=float, default=0.2, help="held-out share (default 0.2)")
    run.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    run.add_argument("--quality-metric", help="metric the gate judges (default accuracy / r2)")
    run.add_argument("--quality-threshold", type=float,
                     help="gate threshold (default 0.7 accuracy / 0.2 r2)")
    run.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                     help=f"where kfp.local keeps run outputs (default {DEFAULT_RUNS_DIR})")
    _add_store(run)
    _add_output(run)
    run.set_defaults(handler=cmd_run)

    comp = commands.add_parser(
        "compile", help="compile pipelines for a cluster",
        description="Compile every pipeline to KFP IR YAML (dashboard, `kfp run create`) and "
        "to Kubernetes-native Pipeline + PipelineVersion YAML (`kubectl apply`).",
    )
    comp.add_argument("--output-dir", default="compiled", help="default ./compiled")
    comp.add_argument("--image", default=DEFAULT_IMAGE,
                      help=f"the suite image every component runs (default {DEFAULT_IMAGE})")
    comp.add_argument("--pipeline", action="append", help="compile only this one (repeatable)")
    comp.add_argument("--namespace", help="namespace of the Kubernetes-native resources")
    comp.add_argument("--s3-secret", default=DEFAULT_SECRET,
                      help=f"Secret with keys accesskey/secretkey (default {DEFAULT_SECRET})")
    comp.add_argument("--s3-endpoint", default=DEFAULT_ENDPOINT,
                      help=f"in-cluster S3 endpoint (default {DEFAULT_ENDPOINT})")
    _add_output(comp)
    comp.set_defaults(handler=cmd_compile)
    return parser


def _error_types() -> tuple[type[BaseException], ...]:
    from kfp_mlops.data.sources import DataError
    from kfp_mlops.model.package import ModelIntegrityError
    from kfp_mlops.storage import StoreError

    return (CliError, DataError, StoreError, ModelIntegrityError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kfp-mlops`` console script."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _error_types() as exc:
        message = str(exc)
        print(f"kfp-mlops {args.command}: error: {message}", file=sys.stderr)
        if getattr(args, "output", "text") == "json":
            print(json.dumps({"error": message}))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
