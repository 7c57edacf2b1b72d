"""Release a registry version: deploy it to KServe, then record the outcome.

Without a cluster the registry alone records the promotion. A failed rollout leaves the
registry unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import open_store

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
        registry.transition(name, version, "production", reason=reason, actor=actor)
        mr.after_stage_change(registry, name, model_registry)
        return ReleaseResult("registry-only", True, reason)
    if not target.uri.startswith("s3://"):
        raise ValueError(
            f"{target.uri} is on a local disk a cluster cannot read; publish to an "
            "s3://bucket/prefix store to deploy with KServe"
        )
    from kfp_mlops.serving.deploy import deploy_model

    storage_uri = mr.model_registry_uri(name, version) if serve_from_model_registry else target.uri
    result = deploy_model(
        name, namespace, storage_uri, canary_traffic_percent=canary_traffic_percent,
        timeout_s=timeout_s, model_version=str(version),
        # A new InferenceService logs to the prediction log sink when the deploy task has
        # this variable (docs/live-loop.md); one made from manifests/ has its logger.
        log_url=os.environ.get(LOG_URL_ENV) or None,
    )
    if not result.succeeded:
        return ReleaseResult(result.status, False, f"{result.status}: {result.reason}")
    registry.transition(name, version, "production", reason=result.reason, actor=actor)
    mr.after_deploy(registry, name, version, model_registry, namespace=namespace,
                    inference_service=name, details={"url": result.url, "status": result.status,
                                                     "storage_uri": storage_uri})
    return ReleaseResult(result.status, True, f"{result.status}: {result.reason}")
