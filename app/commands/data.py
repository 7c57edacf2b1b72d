"""``kfp-mlops data``: dataset versions, schemas and drift, from the store."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path

from kfp_mlops.app.commands.common import CliError, add_output, add_store, emit, store_uri


def _store(args: argparse.Namespace):
    from kfp_mlops.storage import open_store

    return open_store(store_uri(args))


def list_command(args: argparse.Namespace) -> int:
    """List dataset versions, newest first."""
    from kfp_mlops.data.versions import list_dataset_versions

    versions = list_dataset_versions(_store(args))
    lines = [f"{'VERSION':<18} {'ROWS':>10} {'COLS':>5}  {'CREATED':<26} SOURCE"]
    lines += [
        f"{v.version_id:<18} {v.rows:>10} {len(v.columns):>5}  {v.created_at:<26} {v.source_uri}"
        for v in versions
    ]
    emit(args, [asdict(v) for v in versions],
         "\n".join(lines) if versions else "no dataset versions in the store yet")
    return 0


def show_command(args: argparse.Namespace) -> int:
    """Show one dataset version's metadata."""
    from kfp_mlops.data.versions import get_dataset_version

    version = get_dataset_version(_store(args), args.version)
    lines = [
        f"dataset version {version.version_id}",
        f"  source:   {version.source_uri}",
        f"  rows:     {version.rows}",
        f"  created:  {version.created_at}",
        f"  parent:   {version.parent or '-'}",
        f"  sha256:   {version.sha256}" if not version.shards else
        f"  shards:   {len(version.shards)}, kept in place (content hash "
        f"{version.content_sha256[:16]}...)",
        "  columns:",
    ] + [f"    {name}: {kind}" for name, kind in version.columns.items()]
    emit(args, asdict(version), "\n".join(lines))
    return 0


def schema_command(args: argparse.Namespace) -> int:
    """Print a stored schema, or store an edited one as its next version."""
    from kfp_mlops.data.schema import Schema, SchemaError, load_schema, save_schema

    store = _store(args)
    if args.set:
        try:
            schema = Schema.from_yaml(Path(args.set).read_text())
        except (OSError, SchemaError, ValueError) as exc:
            raise CliError(f"cannot use {args.set} as a schema: {exc}") from None
        version = save_schema(store, schema, args.name)
        emit(args, {"name": args.name, "version": version},
             f"stored {args.set} as schema {args.name!r} version {version}; "
             "the next training run validates against it")
        return 0
    schema = load_schema(store, args.name, args.version)
    emit(args, {"name": args.name, "version": schema.version, "yaml": schema.to_yaml()},
         schema.to_yaml().rstrip())
    return 0


def _as_parquet(store, source: str, workdir: Path) -> Path:
    """A dataset version id, or anything ``--data`` accepts, as a local Parquet file."""
    from kfp_mlops.data.ingest import ingest_to_parquet, parquet_as_is
    from kfp_mlops.data.versions import (
        DatasetVersionNotFoundError,
        download_dataset,
        get_dataset_version,
    )

    target = workdir / f"{len(list(workdir.iterdir()))}.parquet"
    try:
        get_dataset_version(store, source)
    except DatasetVersionNotFoundError:  # not a version id: a path or URI
        as_is = parquet_as_is(source)
        if as_is is not None:
            return as_is
        ingest_to_parquet(source, target)
        return target
    return download_dataset(store, source, target)


def aligned(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    """Text table lines, each column padded to its widest cell (``align``: < or > each)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths, strict=True))
            .rstrip() for row in [header, *rows]]


def keep_freed_memory(pad: int = 32 << 20) -> None:
    """Let glibc keep ``pad`` bytes of freed heap in each arena instead of trimming it.

    A scan allocates and frees numpy temporaries of half a MiB per column and batch; by
    default glibc gives such memory back to the system as soon as the top of a heap is
    free, and faults it in again on the next batch: about 95,000 page faults and 0.45-0.7 s
    of system CPU for the drift of two 1M-row files; 32,000 and 0.25-0.65 s with a pad of
    32 MiB, peak RSS within the run-to-run spread. A process-wide setting, so the command
    sets it, not the library; elsewhere than glibc (no ``mallopt``) nothing changes.
    """
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-2, pad)  # M_TOP_PAD
    except (OSError, AttributeError):
        pass


def drift_command(args: argparse.Namespace) -> int:
    """Compare two datasets: per-feature tests, the drift share, and an HTML report."""
    from kfp_mlops.data.drift import DriftThresholds, detect_drift

    keep_freed_memory()

    store = _store(args)
    thresholds = DriftThresholds(drift_share=args.drift_share) if args.drift_share else None
    with tempfile.TemporaryDirectory() as tmp:
        reference = _as_parquet(store, args.reference, Path(tmp))
        current = _as_parquet(store, args.current, Path(tmp))
        result = detect_drift(reference, current, thresholds, target=args.target, fork=True)
    if not result.features:
        raise CliError(
            f"{args.reference!r} and {args.current!r} share no feature columns: nothing to "
            "compare. Check that both are versions of the same data"
        )
    if args.report:
        from kfp_mlops.data.report import html_report  # after the scans: not in the fork

        Path(args.report).write_text(html_report(
            result.current_stats, drift=result, title=f"Drift: {args.current} vs {args.reference}",
            reference_name=args.reference, current_name=args.current,
        ))
    rows = [[f.column, f"{f.role} (not counted)" if f is result.target_drift else f.role, f.test,
             f"{f.score:.4f}", f"{f.threshold:.4f}", "yes" if f.drifted else "no"]
            for f in result.columns]
    lines = [result.reason,
             *aligned(["COLUMN", "ROLE", "TEST", "SCORE", "THRESHOLD", "DRIFT"], rows, "<<<>><")]
    if result.target is None:
        lines.append("every column counts in the drift share; --target keeps the label out")
    if args.report:
        lines.append(f"report: {args.report}")
    emit(args, result.to_dict(), "\n".join(lines))
    return 0


def profile_command(args: argparse.Namespace) -> int:
    """Profile a sharded source in a process pool, record it as a version, write a report."""
    import sys
    import time

    from kfp_mlops.data.report import html_report
    from kfp_mlops.data.shard_stats import merge_partials, record_version, scan_all_shards
    from kfp_mlops.data.shards import DEFAULT_SHARD_ROWS, describe, plan_shards

    start = time.perf_counter()
    plan = plan_shards(args.source, shard_rows=args.shard_rows or DEFAULT_SHARD_ROWS)
    quiet = args.output == "json"
    if not quiet:
        print(f"kfp-mlops data profile: {plan.rows:,} rows in {plan.files} files -> "
              f"{len(plan.shards)} shards", file=sys.stderr, flush=True)
    done = []

    def progress(summary: dict) -> None:
        done.append(summary)
        if not quiet:
            print(f"  [{len(done):>{len(str(len(plan.shards)))}}/{len(plan.shards)}] shard "
                  f"{summary['index']}: {summary['rows']:,} rows "
                  f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="kfp-mlops-profile-") as tmp:
        merged = merge_partials(plan, scan_all_shards(plan, tmp, workers=args.workers,
                                                      on_done=progress))
    version, created = record_version(_store(args), plan, merged)
    stats = merged.scan.stats
    if args.report:
        Path(args.report).write_text(html_report(stats, title=f"Data report: {args.source}",
                                                 current_name=args.source))
    if args.statistics:
        Path(args.statistics).write_text(stats.to_json())
    seconds = time.perf_counter() - start
    lines = [
        f"{args.source}: {stats.rows:,} rows, {len(stats.columns)} columns, "
        f"{stats.duplicate_rows:,} duplicate rows, in {len(plan.shards)} shards ({seconds:.1f} s)",
        f"dataset version {version.version_id} ({'new' if created else 'already recorded'}; "
        "kept in place, not copied)",
        f"quantiles: {stats.quantile_method}",
    ]
    lines += [f"report: {args.report}"] if args.report else []
    emit(args, {**describe(plan), "version": version.version_id, "new": created,
                "seconds": round(seconds, 2), "statistics": stats.to_dict()}, "\n".join(lines))
    return 0


def generate_command(args: argparse.Namespace) -> int:
    """Write a reference or drifted batch of the bundled loan-default generator."""
    from kfp_mlops.data.generator import make_batch

    frame = make_batch(args.kind, args.rows, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    emit(args, {"path": str(out), "rows": len(frame), "kind": args.kind, "target": "default"},
         f"wrote {len(frame)} {args.kind} rows to {out} (target column 'default')")
    return 0


def register(commands) -> None:
    """Add ``data list|show|schema|drift|profile|generate``."""
    data = commands.add_parser("data", help="dataset versions, schemas and drift")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="dataset versions in the store, newest first")
    listing.set_defaults(handler=list_command)

    show = sub.add_parser("show", help="one dataset version's metadata")
    show.add_argument("version", help="a version id from `data list`")
    show.set_defaults(handler=show_command)

    schema = sub.add_parser(
        "schema", help="print a stored schema, or store an edited one (--set FILE)",
        description="Schemas are inferred by the first training run of a model and stored "
        "as YAML under schemas/<name>/<version>/. Print one, edit it, and store it back "
        "with --set: later runs validate against the newest version.",
    )
    schema.add_argument("name", help="schema name (the model name)")
    schema.add_argument("--version", type=int, help="default: the newest")
    schema.add_argument("--set", metavar="FILE", help="store this edited schema.yaml")
    schema.set_defaults(handler=schema_command)

    drift = sub.add_parser("drift", help="compare two datasets for drift")
    drift.add_argument("--reference", required=True,
                       help="dataset version id, path, s3:// URI or bundled name")
    drift.add_argument("--current", required=True, help="the same kinds as --reference")
    drift.add_argument("--drift-share", type=float,
                       help="share of drifted features that means dataset drift (default 0.5)")
    drift.add_argument("--target", help="the label column: tested and shown, but not counted "
                       "in the drift share (default: none, every shared column counts)")
    drift.add_argument("--report", help="write the HTML report here")
    drift.set_defaults(handler=drift_command, ends_fast=True)  # see cli.console_main

    profile = sub.add_parser(
        "profile", help="statistics of a folder, glob or S3 prefix of Parquet files, in shards",
    )
    profile.add_argument("source", help="s3://bucket/prefix/, a folder (hive key=value "
                         "folders become columns) or a glob of Parquet files")
    profile.add_argument("--shard-rows", type=int, metavar="N",
                         help="at most N rows a shard (default 5,000,000)")
    profile.add_argument("--workers", type=int, default=0,
                         help="processes (default 0: one per usable core)")
    profile.add_argument("--report", metavar="FILE", help="write the HTML data report here")
    profile.add_argument("--statistics", metavar="FILE", help="write the statistics JSON here")
    profile.set_defaults(handler=profile_command)

    generate = sub.add_parser(
        "generate", help="write a reference or drifted batch (loan defaults) for the loop demo",
    )
    generate.add_argument("--kind", choices=["reference", "drifted"], default="reference",
                          help="the reference world, or the drifted one")
    generate.add_argument("--rows", type=int, default=2000, help="how many rows")
    generate.add_argument("--seed", type=int, default=0,
                          help="random seed: another seed, another batch of the same world")
    generate.add_argument("--out", required=True, help="CSV or .parquet path")
    generate.set_defaults(handler=generate_command)
    add_output(generate)

    for parser in (listing, show, schema, drift, profile):
        add_store(parser)
        add_output(parser)
