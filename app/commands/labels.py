"""``kfp-mlops labels``: late ground truth for the prediction log, and the labelled window."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kfp_mlops.app.commands.common import CliError, add_output, add_store, emit, store_uri


def add_command(args: argparse.Namespace) -> int:
    """Store a labels file for a model's logged predictions."""
    from kfp_mlops.live.labels import add_labels, read_labels_file
    from kfp_mlops.live.logged import check_name
    from kfp_mlops.model.registry import Registry, RegistryError
    from kfp_mlops.storage import open_store

    store = open_store(store_uri(args))
    check_name(args.model, "model name")
    try:
        target = Registry(store).get(args.model).metadata.target
    except RegistryError:
        target = None  # the label column must then be called 'label'
    labels = read_labels_file(args.data, key=args.key, target=target)
    key, new = add_labels(store, args.model, labels, key=args.key)
    said = "stored" if new else "already stored (same file), nothing written"
    emit(args, {"model": args.model, "rows": len(labels), "key": args.key or "id",
                "stored_as": store.uri_for(key), "new": new},
         f"{len(labels)} labels for {args.model} (key {args.key or 'id'}) {said}: "
         f"{store.uri_for(key)}")
    return 0


def join_command(args: argparse.Namespace) -> int:
    """Publish the labelled prediction log of a window as a dataset version."""
    from kfp_mlops.app.commands.loop import resolve_data
    from kfp_mlops.data.ingest import ingest_to_parquet

    args.data = None
    args.model_name = args.model
    resolve_data(args)
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-join-") as tmp:
        result = ingest_to_parquet(args.data, Path(tmp) / "window.parquet", store_uri(args))
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(tmp, "window.parquet").replace(args.out)
    if result.dataset_version is None:
        raise CliError("the window was read but no dataset version was published")
    emit(args, {"dataset_version": result.dataset_version, "rows": result.rows,
                "new": result.new_version, "source": result.source_uri, "out": args.out},
         f"dataset version {result.dataset_version} ({'new' if result.new_version else 'existing'}"
         f"): {result.rows} logged rows, labels joined; source {result.source_uri}")
    return 0


def register(commands) -> None:
    """Add ``labels add|join``."""
    from kfp_mlops.app.commands.loop import add_window_flags

    labels = commands.add_parser("labels", help="late ground truth for logged predictions")
    sub = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")

    add = sub.add_parser("add", help="store labels for a model's logged predictions")
    add.add_argument("--model", required=True, help="registry / InferenceService name")
    add.add_argument("--data", required=True,
                     help="CSV or Parquet with an id (or --key) column and a label column")
    add.add_argument("--key", help="join on this column the requests carried instead of the "
                     "logged request id (default: id = the request's Ce-Id)")
    add.set_defaults(handler=add_command)

    join = sub.add_parser("join", help="publish a window of logged predictions with their "
                          "labels as a dataset version")
    join.add_argument("--model", required=True, help="registry / InferenceService name")
    add_window_flags(join)
    join.add_argument("--out", help="also copy the labelled rows to this Parquet file")
    join.set_defaults(handler=join_command)

    for parser in (add, join):
        add_store(parser)
        add_output(parser)
