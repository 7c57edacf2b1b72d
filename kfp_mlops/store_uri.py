"""Store URIs that name the Kubernetes namespace they are used in.

On multi-user Kubeflow (KFP 2.15.0 and newer) each profile's S3 key, the
``mlpipeline-minio-artifact`` Secret the pipelines map, may only touch these prefixes
of the ``mlpipeline`` bucket: ``artifacts/``, ``private-artifacts/<namespace>/``,
``private/<namespace>/`` and ``shared/`` (the statement the profile controller's
``sync.py`` writes in kubeflow/pipelines; tests/fixtures/releases holds it). A lifecycle
rule may expire ``private-artifacts/``, so durable things belong under
``private/<namespace>/``, and the namespace is only known in the pod.

So the cluster default store is the template :data:`CLUSTER_STORE_TEMPLATE`, and
:func:`resolve_store_uri` (called by :func:`kfp_mlops.storage.open_store`) fills in
``{namespace}`` at run time: from ``$KFP_MLOPS_NAMESPACE``, else the namespace file that
Kubernetes mounts into every pod with a service account token. Standalone (single-user)
KFP runs its pods in ``kubeflow`` with the installation's own key, which may write
anywhere, so the same default works there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from kfp_mlops.errors import KfpMlopsError

NAMESPACE_PLACEHOLDER = "{namespace}"
NAMESPACE_ENV = "KFP_MLOPS_NAMESPACE"
# Mounted by Kubernetes beside the service account token in every pod that has one.
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The bucket KFP installs and the one prefix of it a profile's key may write durably.
KFP_BUCKET = "mlpipeline"
CLUSTER_STORE_TEMPLATE = f"s3://{KFP_BUCKET}/private/{NAMESPACE_PLACEHOLDER}/kfp-mlops"

# A namespace is a DNS-1123 label (Kubernetes' validation of metadata.name for Namespace).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class StoreUriError(KfpMlopsError, ValueError):
    """A store URI that names ``{namespace}`` where no namespace is known."""


def current_namespace(
    env: Mapping[str, str] | None = None, namespace_file: Path | None = None
) -> str | None:
    """The namespace this process runs in: ``$KFP_MLOPS_NAMESPACE``, else the pod's own.

    None outside a pod (a laptop), where nothing says which profile is meant.
    """
    env = os.environ if env is None else env
    explicit = (env.get(NAMESPACE_ENV) or "").strip()
    if explicit:
        return explicit
    path = SERVICE_ACCOUNT_NAMESPACE_FILE if namespace_file is None else namespace_file
    try:
        found = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return found or None


def resolve_store_uri(
    uri: str, namespace: str | None = None, *, env: Mapping[str, str] | None = None,
    namespace_file: Path | None = None,
) -> str:
    """``uri`` with ``{namespace}`` replaced by ``namespace`` or :func:`current_namespace`.

    A URI without the placeholder is returned unchanged. Raises :class:`StoreUriError`
    when the placeholder is there but no namespace is known, or the namespace is not a
    Kubernetes name (it becomes part of an S3 key, so nothing else may pass).
    """
    if NAMESPACE_PLACEHOLDER not in uri:
        return uri
    chosen = namespace or current_namespace(env, namespace_file)
    if not chosen:
        raise StoreUriError(
            f"the store {uri!r} names {NAMESPACE_PLACEHOLDER}, which is filled in with the "
            "Kubernetes namespace of the pod, but this process runs in no pod; set "
            f"{NAMESPACE_ENV}=<your profile namespace>, or pass a store without it "
            "(a local folder such as ./mlops-store, or s3://bucket/prefix)"
        )
    if not _DNS_LABEL.match(chosen):
        raise StoreUriError(
            f"namespace {chosen!r} (for the store {uri!r}) is not a Kubernetes namespace "
            "name (lower-case letters, digits and '-', at most 63); fix "
            f"{NAMESPACE_ENV} or the pod's namespace"
        )
    return uri.replace(NAMESPACE_PLACEHOLDER, chosen)
