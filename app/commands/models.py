"""``kfp-mlops models``: list, show, promote and roll back registry versions."""

from __future__ import annotations

import argparse
import getpass
from dataclasses import asdict

from kfp_mlops.app.commands.common import add_output, add_store, emit, store_uri


def _registry(args: argparse.Namespace):
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.storage import open_store

    return Registry(open_store(store_uri(args)))


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return args.actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "cli"


def _version_row(version) -> dict:
    meta = version.metadata
    return {
        "name": version.name, "version": version.version, "stage": version.stage,
        "blessed": version.blessed, "created_at": meta.created_at,
        "estimator": meta.estimator, "metrics": meta.metrics,
        "dataset_version": meta.dataset_version, "uri": version.uri,
    }


def _main_metric(metrics: dict) -> str:
    for name in ("accuracy", "r2"):
        if name in metrics:
            return f"{name} {metrics[name]:.4f}"
    return ""


def list_command(args: argparse.Namespace) -> int:
    """List models, or the versions of one model."""
    registry = _registry(args)
    if args.name:
        rows = [_version_row(v) for v in registry.list_versions(args.name)]
        lines = [f"{'VERSION':>7}  {'STAGE':<10} {'BLESSED':<7}  {'CREATED':<28} METRIC"]
        lines += [
            f"{r['version']:>7}  {r['stage']:<10} {'yes' if r['blessed'] else 'no':<7}  "
            f"{r['created_at'] or '':<28} {_main_metric(r['metrics'])}"
            for r in rows
        ]
        emit(args, rows, "\n".join(lines))
        return 0
    models = []
    for name in registry.list_models():
        versions = registry.list_versions(name)
        production = [v.version for v in versions if v.stage == "production"]
        models.append({
            "name": name, "versions": len(versions), "latest": versions[-1].version,
            "production": production[0] if production else None,
        })
    lines = [f"{'NAME':<30} {'VERSIONS':>8} {'LATEST':>6} {'PRODUCTION':>10}"]
    lines += [
        f"{m['name']:<30} {m['versions']:>8} {m['latest']:>6} {m['production'] or '-':>10}"
        for m in models
    ]
    emit(args, models, "\n".join(lines) if models else "no models in the store yet")
    return 0


def show_command(args: argparse.Namespace) -> int:
    """Show one version (NAME, NAME@VERSION or NAME@STAGE) with its lineage and history."""
    registry = _registry(args)
    version = registry.get(args.ref)
    history = [t.to_dict() for t in registry.history(version.name) if t.version == version.version]
    payload = {**_version_row(version), "metadata": asdict(version.metadata), "history": history}
    meta = version.metadata
    lines = [
        f"{version.name} version {version.version}  stage {version.stage}  "
        f"blessed {'yes' if version.blessed else 'no'}",
        f"  uri:          {version.uri}",
        f"  task:         {meta.task} of {meta.target!r} with {meta.estimator}",
        f"  features:     {', '.join(meta.feature_names)}",
        f"  metrics:      {'  '.join(f'{k} {v:.4f}' for k, v in meta.metrics.items())}",
        f"  data:         dataset {meta.dataset_version or '-'}, sha256 {meta.data_sha256 or '-'}",
        f"  model sha256: {meta.model_sha256}",
        f"  built with:   scikit-learn {meta.sklearn_version}, kfp-mlops {meta.kfp_mlops_version}"
        + (f", {meta.estimator_package} {meta.estimator_package_version}"
           if meta.estimator_package else ""),
        f"  run:          {meta.run_id or '-'}  created {meta.created_at}",
        "  history:",
    ]
    lines += [
        f"    {t['at']}  {t['from_stage'] or '-'} -> {t['to_stage']}  by {t['actor'] or '-'}: "
        f"{t['reason']}"
        for t in history
    ] or ["    (no stage changes)"]
    emit(args, payload, "\n".join(lines))
    return 0


def promote_command(args: argparse.Namespace) -> int:
    """Move a version to a stage, recording who and why."""
    registry = _registry(args)
    transition = registry.transition(
        args.name, args.version, args.stage, reason=args.reason, actor=_actor(args),
        force=args.force,
    )
    emit(args, transition.to_dict(),
         f"{args.name} version {args.version}: {transition.from_stage} -> {transition.to_stage}")
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """Return production to the previous production version."""
    registry = _registry(args)
    transition = registry.rollback(args.name, reason=args.reason, actor=_actor(args))
    emit(args, transition.to_dict(),
         f"{args.name}: production is version {transition.version} again")
    return 0


def register(commands) -> None:
    """Add ``models list|show|promote|rollback``."""
    from kfp_mlops.model.registry import STAGES

    models = commands.add_parser("models", help="the model registry in the store")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="models, or the versions of one model")
    listing.add_argument("name", nargs="?", help="list this model's versions")
    listing.set_defaults(handler=list_command)

    show = sub.add_parser("show", help="one version: NAME, NAME@VERSION or NAME@STAGE")
    show.add_argument("ref", help="e.g. penguins, penguins@3, penguins@production")
    show.set_defaults(handler=show_command)

    promote = sub.add_parser("promote", help="move a version to a stage")
    promote.add_argument("name", help="registry name, e.g. penguins")
    promote.add_argument("version", type=int, help="version number, e.g. 3")
    promote.add_argument("--stage", required=True, choices=STAGES, help="the new stage")
    promote.add_argument("--reason", required=True, help="why; kept in the history")
    promote.add_argument("--force", action="store_true",
                         help="allow promoting an archived or unblessed version")
    promote.add_argument("--actor", help="who (default: the current user)")
    promote.set_defaults(handler=promote_command)

    rollback = sub.add_parser("rollback", help="production returns to the previous version")
    rollback.add_argument("name", help="registry name, e.g. penguins")
    rollback.add_argument("--reason", default="rollback from the CLI",
                          help="why; kept in the history")
    rollback.add_argument("--actor", help="who (default: the current user)")
    rollback.set_defaults(handler=rollback_command)

    for parser in (listing, show, promote, rollback):
        add_store(parser)
        add_output(parser)
