from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def deploy(
    store: str,
    model_name: str,
    version: int,
    blessing: Input[Artifact],
    infra_validation: Input[Artifact],
    namespace: str = "",
    canary_traffic_percent: int = 0,
    timeout_s: int = 600,
    model_registry: str = "",
    serve_from_model_registry: bool = False,
) -> NamedTuple("DeployOutputs", [("passed", bool), ("status", str), ("reason", str)]):
    """Roll the version out to a KServe InferenceService, then promote or roll back.

    Args:
        store: Store URI holding the registry.
        model_name: Registry name (also the InferenceService name).
        version: Registry version to release.
        blessing: The ``bless-model`` verdict; the release is refused unless it passed.
        infra_validation: The ``infra-validate`` verdict; likewise. Both are checked
            here, whatever the pipeline's wiring, before anything changes.
        namespace: Kubernetes namespace; empty means no cluster (local run): the
            version is promoted in the registry only.
        canary_traffic_percent: Share of traffic for the new revision before promotion
            (1-99, Knative mode); 0 sends all traffic at once.
        timeout_s: How long to wait for the InferenceService to become Ready.
        model_registry: Kubeflow Model Registry URL (``kubeflow``: the in-cluster
            service; empty: ``$KFP_MLOPS_MODEL_REGISTRY``, else none): the promotion and
            the InferenceService (with its namespace as serving environment) are
            recorded there.
        serve_from_model_registry: Deploy ``model-registry://NAME/VERSION`` instead of
            the store URI; needs the registry's storage initializer on the cluster
            (ClusterStorageContainer, docs/registry.md).

    Returns:
        passed: whether the version now serves; status: promoted, created,
        registry-only, rolled_back or failed; reason: why.
    """
    import logging
    from collections import namedtuple

    from kfp_mlops.serving import steps

    log = logging.getLogger("kfp_mlops.components.serving.deploy")
    result = steps.deploy(
        store, model_name, version, blessing.path, infra_validation.path,
        namespace=namespace or None,
        canary_traffic_percent=canary_traffic_percent or None, timeout_s=timeout_s,
        model_registry=model_registry or None,
        serve_from_model_registry=serve_from_model_registry,
    )
    log.info(result.reason)
    return namedtuple("DeployOutputs", ["passed", "status", "reason"])(
        result.passed, result.status, result.reason
    )
