"""Release a registry version: deploy it to KServe, then record the outcome.

Without a cluster the registry alone records the promotion. A failed rollout leaves the
registry unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.model.registry import Registry, RegistryError, finish_command
from kfp_mlops.storage import StoreError, open_store

LOG_URL_ENV = "KFP_MLOPS_LOG_URL"


@dataclass(frozen=True)
class ReleaseResult:
    """What the release did (``status``), whether it went live (``passed``), and why."""

    status: str  # promoted | created | registry-only | rolled_back | failed
    passed: bool
    reason: str


def release_version(
    store_uri: str,
    name: str,
    version: int,
    *,
    namespace: str | None,
    canary_traffic_percent: int | None = None,
    timeout_s: float = 600.0,
    actor: str = "kfp-mlops",
    model_registry: str | None = None,
    serve_from_model_registry: bool = False,
) -> ReleaseResult:
    """Deploy ``name@version`` to ``namespace`` and promote it, or roll back and say why.

    With no namespace (a local run, no cluster) the version is promoted to production
    in the registry only, so ``kfp-mlops serve NAME@production`` serves it locally.

    With a Kubeflow Model Registry (``model_registry``, else ``$KFP_MLOPS_MODEL_REGISTRY``)
    the new stages, and the InferenceService in its namespace, are recorded there too
    (``kfp_mlops.model.kubeflow_registry``; a failure there is a warning, never a failed
    release). ``serve_from_model_registry`` deploys ``model-registry://NAME/VERSION``
    (KServe resolves it with the registry's storage initializer) instead of the store URI.
    """
    from kfp_mlops.model import kubeflow_registry as mr

    registry = Registry(open_store(store_uri))
    target = registry.get(f"{name}@{version}")
    if not namespace:
        reason = "no cluster configured: promoted to production in the registry only"
        _promote(registry, target.uri, name, version, reason, actor, serving=None)
        mr.after_stage_change(registry, name, model_registry)
        return ReleaseResult("registry-only", True, reason)
    if not target.uri.startswith("s3://"):
        raise ValueError(
            f"{target.uri} is on a local disk a cluster cannot read; publish to an "
            "s3://bucket/prefix store to deploy with KServe"
        )
    from kfp_mlops.serving.deploy import InferenceServiceSpec, deploy_model

    storage_uri = mr.model_registry_uri(name, version) if serve_from_model_registry else target.uri
    result = deploy_model(InferenceServiceSpec(
        name, namespace, storage_uri, canary_traffic_percent=canary_traffic_percent,
        model_version=str(version),
        # A new InferenceService logs to the prediction log sink when the deploy task has
        # this variable (docs/live-loop.md); one made from manifests/ has its logger.
        log_url=os.environ.get(LOG_URL_ENV) or None,
    ), timeout_s=timeout_s)
    if not result.succeeded:
        return ReleaseResult(result.status, False, f"{result.status}: {result.reason}")
    _promote(registry, target.uri, name, version, result.reason, actor,
             serving=f"it serves in namespace {namespace!r}")
    mr.after_deploy(registry, name, version, model_registry, namespace=namespace,
                    inference_service=name, details={"url": result.url, "status": result.status,
                                                     "storage_uri": storage_uri})
    return ReleaseResult(result.status, True, f"{result.status}: {result.reason}")


class ReleaseUnfinishedError(KfpMlopsError, RuntimeError):
    """A version was published (and maybe deployed) but its promotion was not recorded."""


def _promote(registry: Registry, uri: str, name: str, version: int, reason: str, actor: str,
             serving: str | None) -> None:
    """Record ``name@version`` in production, or say exactly what is left to do."""
    try:
        registry.transition(name, version, "production", reason=reason, actor=actor)
    except (StoreError, RegistryError) as exc:
        where = f"; {serving}" if serving else ""
        raise ReleaseUnfinishedError(
            f"{name} version {version} IS published ({uri}){where}, but it was NOT promoted "
            f"to production in the registry: {exc}. Nothing serves it from the registry's "
            f"point of view until you finish the release: `{finish_command(name, version)}` "
            "(a rerun of the same training finds this version and says so too)"
        ) from exc
