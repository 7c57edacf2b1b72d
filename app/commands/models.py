"""``kfp-mlops models``: list, show, promote and roll back registry versions."""

from __future__ import annotations

import argparse
import getpass
from dataclasses import asdict

from kfp_mlops.app.commands.common import add_output, add_store, emit, store_uri


def add_model_registry(parser: argparse.ArgumentParser) -> None:
    """Add ``--model-registry URL`` (default ``$KFP_MLOPS_MODEL_REGISTRY``)."""
    from kfp_mlops.model.kubeflow_registry import IN_CLUSTER_ALIAS, IN_CLUSTER_URL

    parser.add_argument(
        "--model-registry", default=None, metavar="URL",
        help="Kubeflow Model Registry to mirror versions and stages into, e.g. "
        f"http://localhost:8081 (default: $KFP_MLOPS_MODEL_REGISTRY; '{IN_CLUSTER_ALIAS}' "
        f"is {IN_CLUSTER_URL}); see docs/registry.md",
    )


def _model_registry_url(args: argparse.Namespace) -> str | None:
    from kfp_mlops.model.kubeflow_registry import resolve_url

    return resolve_url(getattr(args, "model_registry", None))


def _mirror_stages(url: str | None, registry, name: str) -> None:
    """After a stage change: mirror it (a failure is a warning naming the sync command)."""
    from kfp_mlops.model.kubeflow_registry import mirror

    mirror(registry, name, url)


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
        mirrored = _mirrored_versions(args, registry, args.name)
        header = f"{'VERSION':>7}  {'STAGE':<10} {'BLESSED':<7}  {'CREATED':<28} METRIC"
        if mirrored is not None:
            header = f"{header:<70} MODEL REGISTRY (state/stage)"
        lines = [header]
        for r in rows:
            line = (f"{r['version']:>7}  {r['stage']:<10} {'yes' if r['blessed'] else 'no':<7}  "
                    f"{r['created_at'] or '':<28} {_main_metric(r['metrics'])}")
            if mirrored is not None:
                shown = mirrored.get(str(r["version"]))
                r["model_registry"] = asdict(shown) if shown else None
                line = f"{line:<70} {_mirror_text(shown, r['stage'])}"
            lines.append(line)
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
    mirrored = _mirror_status(args, registry, [m["name"] for m in models])
    header = f"{'NAME':<30} {'VERSIONS':>8} {'LATEST':>6} {'PRODUCTION':>10}"
    lines = [header + ("  MODEL REGISTRY" if mirrored is not None else "")]
    for m in models:
        line = f"{m['name']:<30} {m['versions']:>8} {m['latest']:>6} {m['production'] or '-':>10}"
        if mirrored is not None:
            m["model_registry"] = mirrored[m["name"]]
            line += f"  {mirrored[m['name']]}"
        lines.append(line)
    emit(args, models, "\n".join(lines) if models else "no models in the store yet")
    return 0


def _mirror_status(args: argparse.Namespace, registry, names: list[str]) -> dict | None:
    """Per model: ``in sync``, ``behind`` or ``not registered`` (None: none configured).

    In sync means the RegisteredModel records the store's current history tip.
    """
    from kfp_mlops.model.kubeflow_registry import (
        TIP_PROPERTY,
        ModelRegistryClient,
        ModelRegistryError,
        read_properties,
    )

    url = _model_registry_url(args)
    if url is None:
        return None
    client = ModelRegistryClient(url)
    status = {}
    for name in names:
        try:
            model = client.find("registered_model", name=name)
        except ModelRegistryError as exc:
            _warn_unreachable(exc)
            return None
        if model is None:
            status[name] = "not registered"
        else:
            tip = read_properties(model).get(TIP_PROPERTY)
            status[name] = "in sync" if tip == registry.tip(name) else "behind"
    return status


def _warn_unreachable(exc: Exception) -> None:
    import logging

    logging.getLogger("kfp_mlops.app.models").warning(
        "showing the store only: %s", exc)


def _mirrored_versions(args: argparse.Namespace, registry, name: str) -> dict | None:
    """What the Model Registry shows for ``name``'s versions (None: none configured).

    Says on stderr when the mirror is behind (a failed sync recorded in the store).
    """
    import logging

    from kfp_mlops.model.kubeflow_registry import (
        ModelRegistryClient,
        ModelRegistryError,
        pending,
        read_model,
    )

    behind = pending(registry.store, name)
    if behind:
        logging.getLogger("kfp_mlops.app.models").warning(
            "the Kubeflow Model Registry is behind the store for %s since %s (%s); run: %s",
            name, behind.get("at", "?"), behind.get("error", "?"), behind.get("command"))
    url = _model_registry_url(args)
    if url is None:
        return None
    try:
        model = read_model(ModelRegistryClient(url), name)
    except ModelRegistryError as exc:
        _warn_unreachable(exc)
        return None
    if model is None:
        return {}
    return {v.version: v for v in model["versions"]}


def _mirror_text(shown, stage: str) -> str:
    if shown is None:
        return "not registered"
    text = f"{shown.state}/{shown.stage or '-'}"
    if shown.registration != "complete":
        text += " (incomplete)"
    elif shown.stage != stage:
        text += " (behind: run models sync)"
    return text


def sync_command(args: argparse.Namespace) -> int:
    """Register what the store holds for a model in the Kubeflow Model Registry."""
    from kfp_mlops.app.commands.common import CliError
    from kfp_mlops.model.kubeflow_registry import (
        ModelRegistryClient,
        clear_pending,
        sync_model,
    )

    url = _model_registry_url(args)
    if url is None:
        raise CliError(
            "no Kubeflow Model Registry configured: give --model-registry URL or set "
            "KFP_MLOPS_MODEL_REGISTRY (e.g. http://localhost:8081 after `kubectl port-forward "
            "svc/model-registry-service -n kubeflow 8081:8080`)"
        )
    registry = _registry(args)
    report = sync_model(registry, args.name, ModelRegistryClient(url))
    clear_pending(registry.store, args.name)
    emit(args, report.to_dict(),
         f"{args.name}: the Model Registry at {url} shows the store's state "
         f"(registered model {report.registered_model_id}; new versions: "
         f"{', '.join(map(str, report.created)) or 'none'}; updated: "
         f"{', '.join(map(str, report.updated)) or 'none'})")
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
    url = _model_registry_url(args)  # a malformed URL stops here, before any change
    registry = _registry(args)
    transition = registry.transition(
        args.name, args.version, args.stage, reason=args.reason, actor=_actor(args),
        force=args.force,
    )
    _mirror_stages(url, registry, args.name)
    emit(args, transition.to_dict(),
         f"{args.name} version {args.version}: {transition.from_stage} -> {transition.to_stage}")
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """Return production to the previous production version."""
    url = _model_registry_url(args)  # a malformed URL stops here, before any change
    registry = _registry(args)
    transition = registry.rollback(args.name, reason=args.reason, actor=_actor(args))
    _mirror_stages(url, registry, args.name)
    emit(args, transition.to_dict(),
         f"{args.name}: production is version {transition.version} again")
    return 0


def register(commands) -> None:
    """Add ``models list|show|promote|rollback|sync``."""
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

    sync = sub.add_parser(
        "sync", help="register the model's versions and stages in the Kubeflow Model Registry",
        description="Make the Kubeflow Model Registry show what the store holds for NAME: "
        "creates missing versions and artifacts, updates stages (idempotent). Run it when "
        "publish or a stage change said the Model Registry was unreachable.",
    )
    sync.add_argument("name", help="registry name, e.g. penguins")
    sync.set_defaults(handler=sync_command)

    for parser in (listing, show, promote, rollback, sync):
        add_store(parser)
        add_output(parser)
    for parser in (listing, promote, rollback, sync):
        add_model_registry(parser)
