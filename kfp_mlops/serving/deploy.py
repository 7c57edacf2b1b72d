"""Roll a published model version out to a KServe InferenceService, or roll it back.

``deploy_model`` is the core of the pipeline's deploy step. It talks to the Kubernetes API
with the official ``kubernetes`` client (``serving.kserve.io/v1beta1`` InferenceServices):

1. create the InferenceService if it is absent, else merge-patch the predictor's
   ``storageUri`` (plus ``canaryTrafficPercent`` for a canary, and in Knative mode the
   ``serving.kserve.io/enable-tag-routing`` annotation);
2. poll until KServe has reconciled that generation and reports ``Ready=True`` (in Knative
   mode: on a new revision), failing early when KServe marks the model load as failed,
   or on timeout;
3. send a smoke request to the new version. In Knative mode it goes to the ``latest``
   tag URL that KServe's tag routing publishes in ``status.components.predictor.traffic``,
   so it reaches the new revision and never the previous one, whatever the traffic split;
4. promote (drop ``canaryTrafficPercent`` so the new revision takes all traffic) or roll
   back (restore the previous ``storageUri`` and canary setting, wait for Ready) and say why.

Canaries need KServe's Knative mode: ``canaryTrafficPercent`` splits traffic between
Knative revisions, and KServe ignores it in Standard (RawDeployment) mode, so there a
canary is refused before anything is written; a plain rollout works in both modes.

The model registry's stage change is the caller's job, driven by ``DeployResult``.
The API calls are get, create and patch of ``inferenceservices`` (never list, watch or
delete): ``manifests/rbac`` grants exactly those, and tests/deploy checks that the calls
made in every scenario stay within them.

The body is written for the oldest KServe the suite supports (0.15.0, Kubeflow 1.10)
unless ``kserve_version`` (or ``$KFP_MLOPS_KSERVE_VERSION``) names a newer one: fields
that KServe added later (``logger.metadataAnnotations``, from 0.15.1) are left out for
older ones, because the API server refuses unknown fields (docs/cluster.md).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.live.logged import VERSION_ANNOTATION

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"

# KServe's annotations (pkg/constants/constants.go): the deployment mode, and tag routing,
# which makes the Knative route name its traffic targets "latest" and "prev".
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
LATEST_TAG = "latest"
# KServe 0.16 renamed the modes; both spellings are accepted and normalised.
_MODE_ALIASES = {"Serverless": "Knative", "RawDeployment": "Standard"}

# The KServe release whose InferenceService CRD the created body must fit; the oldest one
# the support matrix names unless the deploy task is told otherwise.
KSERVE_VERSION_ENV = "KFP_MLOPS_KSERVE_VERSION"
OLDEST_KSERVE = "0.15.0"
# logger.metadataAnnotations is in the CRD from KServe 0.15.1 (absent from 0.15.0's).
LOGGER_ANNOTATIONS_SINCE = (0, 15, 1)

# KServe's modelStatus.transitionStatus values that no amount of waiting will fix.
_TERMINAL_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}

DeployStatus = Literal["created", "promoted", "rolled_back", "failed"]
SmokeRequest = Callable[[str, str], None]
"""Called as ``smoke(url, model_name)`` once the service is Ready; raises on failure."""


class DeployError(KfpMlopsError, RuntimeError):
    """The Kubernetes API refused a request; nothing was rolled out by that request."""


class KubeConfigError(KfpMlopsError, RuntimeError):
    """Neither in-cluster configuration nor a kubeconfig file could be loaded."""


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy_model`` did and why.

    ``status`` is ``created`` (new service, healthy), ``promoted`` (new version takes all
    traffic), ``rolled_back`` (previous ``storageUri`` restored) or ``failed`` (a new
    service never became healthy, so there was nothing to roll back to). ``url`` is where
    the passing smoke request went; ``revision`` the Knative revision it reached (Knative
    mode only).
    """

    status: DeployStatus
    reason: str
    name: str
    namespace: str
    storage_uri: str
    previous_storage_uri: str | None
    url: str | None = None
    revision: str | None = None

    @property
    def succeeded(self) -> bool:
        """Whether ``storage_uri`` is now what the service serves."""
        return self.status in ("created", "promoted")


def load_kube_config() -> client.ApiClient:
    """Return an API client for the cluster this code runs in, else from the kubeconfig.

    Raises ``KubeConfigError`` ("no cluster configured") when neither is available.
    """
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    except config.ConfigException as in_cluster_error:
        try:
            # Read KUBECONFIG now: the client library reads it once, at import time.
            config_file = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
            config.load_kube_config(config_file=config_file, client_configuration=configuration)
        except (config.ConfigException, OSError) as kubeconfig_error:
            raise KubeConfigError(
                "no cluster configured: not running in a pod "
                f"({in_cluster_error}) and no usable kubeconfig ({kubeconfig_error}); "
                "run inside the cluster with a ServiceAccount, or set KUBECONFIG / create "
                "~/.kube/config (e.g. with `kubectl config`)"
            ) from kubeconfig_error
    return client.ApiClient(configuration)


def parse_kserve_version(text: str) -> tuple[int, int, int]:
    """``0.15.2`` or ``v0.16.0`` as a tuple; ``ValueError`` naming the fix otherwise."""
    parts = text.strip().removeprefix("v").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"KServe version {text!r} is not MAJOR.MINOR.PATCH; give the version the "
            f"cluster runs, e.g. 0.15.2 (kubectl get crd inferenceservices.serving.kserve.io "
            f"-o jsonpath='{{.metadata.annotations}}'), or {OLDEST_KSERVE}, the oldest supported"
        )
    return int(parts[0]), int(parts[1]), int(parts[2])


def kserve_version(explicit: str | None = None) -> str:
    """The KServe version to write for, ``0.15.0`` when nothing says otherwise.

    ``explicit``, else ``$KFP_MLOPS_KSERVE_VERSION``, else the oldest supported, so
    that the default body fits every release.
    """
    chosen = explicit or os.environ.get(KSERVE_VERSION_ENV) or OLDEST_KSERVE
    parse_kserve_version(chosen)
    return chosen.strip().removeprefix("v")


def logger_annotations_supported(version: str) -> bool:
    """Whether KServe ``version``'s CRD has ``logger.metadataAnnotations`` (0.15.1+)."""
    return parse_kserve_version(version) >= LOGGER_ANNOTATIONS_SINCE


# The model-signing key (docs/security.md), from a Secret the store's writers cannot read.
# optional: without the Secret the server checks the sha256 only.
SIGNING_SECRET = "kfp-mlops-signing-key"
SIGNING_KEY_ENV_FROM_SECRET = {
    "name": "KFP_MLOPS_SIGNING_KEY",
    "valueFrom": {"secretKeyRef": {"name": SIGNING_SECRET, "key": "key", "optional": True}},
}


@dataclass(frozen=True)
class InferenceServiceSpec:
    """What to serve and how: the InferenceService a deploy creates or rolls forward.

    ``name`` and ``namespace`` name it; ``storage_uri`` is the model version it serves
    (an ``s3://`` folder or ``model-registry://NAME/VERSION``); ``runtime`` and
    ``service_account`` those of manifests/ (the suite's ServingRuntime, the account
    holding the S3 credentials). ``canary_traffic_percent`` (1-99) sends that share of
    traffic to the new revision before promotion (Knative mode only), ``None`` all at
    once. ``log_url``: a new service's inference logger target; ``model_version`` the
    :data:`VERSION_ANNOTATION` value. ``kserve`` is the cluster's KServe version
    (``None``: ``$KFP_MLOPS_KSERVE_VERSION``, else 0.15.0 when deploying).
    """

    name: str
    namespace: str
    storage_uri: str
    runtime: str = "kfp-mlops-sklearn"
    service_account: str = "kfp-mlops-s3"
    canary_traffic_percent: int | None = None
    log_url: str | None = None
    model_version: str | None = None
    kserve: str | None = None

    def __post_init__(self) -> None:
        percent = self.canary_traffic_percent
        if percent is not None and not 0 < percent < 100:
            raise ValueError(
                f"canary_traffic_percent={percent} is out of range; "
                "give 1-99, or None to send all traffic to the new version at once"
            )


def inference_service(service: InferenceServiceSpec) -> dict[str, Any]:
    """Build the InferenceService body that ``deploy_model`` creates (mirrors manifests/).

    ``log_url``: KServe's inference logger sends every request and response there
    (``mode: all``; the prediction log sink, docs/live-loop.md). ``model_version`` is
    recorded in the :data:`VERSION_ANNOTATION` annotation. From KServe 0.15.1 (``kserve``,
    unset: the oldest supported)
    the logger copies it into its events (``metadataAnnotations``), so the sink files rows
    under the version that answered; KServe 0.15.0's CRD has no such field, so there the
    sink files them under the registry's production version of the moment (a canary's
    rows land under the version it is replacing until it is promoted).
    """
    name, namespace, log_url = service.name, service.namespace, service.log_url
    model_version, canary_traffic_percent = service.model_version, service.canary_traffic_percent
    kserve = service.kserve or OLDEST_KSERVE
    predictor: dict[str, Any] = {
        "serviceAccountName": service.service_account,
        "model": {
            "modelFormat": {"name": "sklearn"},
            "runtime": service.runtime,
            "protocolVersion": "v2",
            "storageUri": service.storage_uri,
            "env": [SIGNING_KEY_ENV_FROM_SECRET],
        },
    }
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    if log_url:
        predictor["logger"] = {"mode": "all", "url": log_url}
        if logger_annotations_supported(kserve):
            predictor["logger"]["metadataAnnotations"] = [VERSION_ANNOTATION]
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/name": "kfp-mlops"},
    }
    if model_version is not None:
        metadata["annotations"] = {VERSION_ANNOTATION: str(model_version)}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def deployment_mode(isvc: dict[str, Any]) -> str | None:
    """Return ``Knative`` or ``Standard`` for an InferenceService, or None if unknown.

    KServe records the mode it chose in ``status.deploymentMode`` (and refuses to change
    it later); before the first reconcile only the ``serving.kserve.io/deploymentMode``
    annotation can say. Old names (``Serverless``, ``RawDeployment``) are normalised.
    """
    status_mode = (isvc.get("status") or {}).get("deploymentMode")
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    mode = status_mode or annotations.get(DEPLOYMENT_MODE_ANNOTATION)
    return _MODE_ALIASES.get(mode, mode) if mode else None


def cluster_local_url(tag_url: str, namespace: str) -> str:
    """Return the in-cluster address of a Knative tag URL such as KServe publishes.

    For every tagged traffic target Knative creates a Kubernetes Service named after the
    tag's host name (``latest-<isvc>-predictor``), so from a pod the target is reachable
    at ``http://latest-<isvc>-predictor.<namespace>.svc.cluster.local`` whatever external
    domain the route has. A URL that is already cluster-local is returned unchanged.
    """
    host = urlsplit(tag_url).hostname or ""
    if host.endswith(".svc.cluster.local"):
        return tag_url.rstrip("/")
    return f"http://{host.split('.')[0]}.{namespace}.svc.cluster.local"


def default_smoke_request(url: str, model_name: str, *, timeout_s: float = 10.0) -> None:
    """Check the Open Inference Protocol (V2) model-ready endpoint; raise unless 200."""
    ready_url = f"{url.rstrip('/')}/v2/models/{model_name}/ready"
    with _open(ready_url, timeout_s) as response:
        if response.status != 200:
            raise RuntimeError(f"GET {ready_url} answered {response.status}, expected 200")


def v2_infer_smoke_request(payload: dict[str, Any], *, timeout_s: float = 10.0) -> SmokeRequest:
    """Return a smoke request that POSTs ``payload`` to the V2 infer endpoint.

    ``payload`` is an Open Inference Protocol request (``{"inputs": [...]}``); the check
    passes when the server answers 200 with an ``outputs`` list.
    """

    def smoke(url: str, model_name: str) -> None:
        infer_url = f"{url.rstrip('/')}/v2/models/{model_name}/infer"
        request = urllib.request.Request(
            infer_url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with _open(request, timeout_s) as response:
                body = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise RuntimeError(f"POST {infer_url} answered {exc.code}: {detail}") from exc
        if not isinstance(body.get("outputs"), list):
            raise RuntimeError(f"POST {infer_url} answered without an 'outputs' list: {body}")

    return smoke


def _open(request: str | urllib.request.Request, timeout_s: float) -> Any:
    """``urlopen`` with the proxy settings of the environment as they are now.

    ``urllib.request.urlopen`` keeps the proxies it read on first use for the life of the
    process; a new opener reads ``http_proxy`` / ``no_proxy`` at each call.
    """
    return urllib.request.build_opener().open(request, timeout=timeout_s)


def deploy_model(
    service: InferenceServiceSpec,
    *,
    timeout_s: float = 600.0,
    poll_interval_s: float = 5.0,
    api_client: client.ApiClient | None = None,
    smoke_request: SmokeRequest | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> DeployResult:
    """Create or update the InferenceService ``service`` describes; check, promote or roll back.

    A canary (``service.canary_traffic_percent``, 1-99) sends that share of traffic to
    the new revision while the smoke request checks it through the revision's own
    ``latest`` tag URL; it needs KServe's Knative mode (a Standard-mode service raises
    ``ValueError`` before anything is written: use None there for a plain rollout).
    ``timeout_s`` bounds each wait for Ready; ``sleep``/``clock`` are injectable so tests
    need no wall time. Raises ``DeployError`` when the API refuses a create or patch,
    ``ValueError`` on bad input. A new service gets KServe's inference logger pointed at
    ``service.log_url`` (an existing one keeps its own logger spec); ``model_version``
    goes into the version annotation the logger copies into its events, and a rollback
    restores the previous value. A new service's body leaves out what the cluster's
    KServe (``service.kserve``) lacks.
    """
    name, namespace, storage_uri = service.name, service.namespace, service.storage_uri
    canary_traffic_percent, model_version = service.canary_traffic_percent, service.model_version
    service = replace(service, kserve=kserve_version(service.kserve))
    api = client.CustomObjectsApi(api_client if api_client is not None else load_kube_config())
    smoke = smoke_request if smoke_request is not None else default_smoke_request
    rollout = _Rollout(api, name, namespace, poll_interval_s, sleep, clock, timeout_s, smoke)
    existing = rollout.get()

    if existing is None:
        body = inference_service(service)
        created = rollout.call("create", api.create_namespaced_custom_object, body=body)
        outcome = rollout.check(created)
        status: DeployStatus = "created" if outcome.ok else "failed"
        reason = (
            outcome.reason
            if outcome.ok
            else (
                f"{outcome.reason}; nothing to roll back to (first deployment of {name!r}), "
                "the unhealthy InferenceService was left for inspection"
            )
        )
        return DeployResult(
            status, reason, name, namespace, storage_uri, None, outcome.url, outcome.revision
        )

    mode = deployment_mode(existing)
    knative = mode == "Knative"
    if canary_traffic_percent is not None and not knative:
        raise ValueError(
            f"canary_traffic_percent={canary_traffic_percent} needs KServe's Knative mode, but "
            f"InferenceService {namespace}/{name} runs in {mode or 'an unknown'} mode: KServe "
            "splits traffic between revisions only in Knative mode and ignores "
            "canaryTrafficPercent otherwise, so nothing would test the new version apart "
            "from the old one. Deploy without a canary (canary_traffic_percent=None, 0 in the "
            "pipeline) for a plain rollout with rollback, or serve it in Knative mode "
            "(manifests/overlays/knative)"
        )
    predictor = (existing.get("spec") or {}).get("predictor") or {}
    previous_uri = (predictor.get("model") or {}).get("storageUri")
    previous_canary = predictor.get("canaryTrafficPercent")
    previous_version = ((existing.get("metadata") or {}).get("annotations") or {}).get(
        VERSION_ANNOTATION)
    before = _predictor_status(existing).get("latestCreatedRevision")
    # Knative makes a new revision for a new storageUri; redeploying the same one may not.
    replaces = before if storage_uri != previous_uri else None

    patched = rollout.patch(storage_uri, canary_traffic_percent, tag_routing=knative,
                            version=model_version)
    outcome = rollout.check(patched, knative=knative, replaces=replaces)
    if outcome.ok and canary_traffic_percent is not None:
        # Promote: without canaryTrafficPercent the latest revision takes all traffic.
        promoted = rollout.patch(storage_uri, None, tag_routing=True, version=model_version)
        outcome = rollout.check(
            promoted, knative=True, stage="after promotion", revision=outcome.revision
        )
    if outcome.ok:
        return DeployResult(
            "promoted",
            outcome.reason,
            name,
            namespace,
            storage_uri,
            previous_uri,
            outcome.url,
            outcome.revision,
        )

    # A canary that failed before promotion never took all traffic, so KServe still has
    # the previous revision as latestRolledoutRevision: pin all traffic back to it at once.
    pin = canary_traffic_percent is not None
    problem = rollout.roll_back(previous_uri, previous_canary, knative=knative, pin=pin,
                                version=previous_version if model_version else None)
    reason = f"rolled back to {previous_uri}: {outcome.reason}"
    if problem:
        reason += f"; {problem}"
    return DeployResult("rolled_back", reason, name, namespace, storage_uri, previous_uri, None)


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    reason: str
    url: str | None = None
    revision: str | None = None


@dataclass
class _Rollout:
    """The API calls, the Ready wait and the smoke check for one InferenceService."""

    api: client.CustomObjectsApi
    name: str
    namespace: str
    poll_interval_s: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    timeout_s: float
    smoke: SmokeRequest

    def call(self, action: str, method: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        try:
            result = method(GROUP, VERSION, self.namespace, PLURAL, **kwargs)
        except ApiException as exc:
            raise DeployError(self._explain(action, exc)) from exc
        return dict(result)

    def get(self) -> dict[str, Any] | None:
        try:
            return dict(
                self.api.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, self.name
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise DeployError(self._explain("get", exc)) from exc

    def patch(
        self, storage_uri: str | None, canary: int | None, *, tag_routing: bool = False,
        version: str | None = None,
    ) -> dict[str, Any]:
        # JSON merge patch: a null canaryTrafficPercent removes the field.
        body: dict[str, Any] = {
            "spec": {
                "predictor": {
                    "model": {"storageUri": storage_uri},
                    "canaryTrafficPercent": canary,
                }
            }
        }
        annotations = {}
        if tag_routing:
            annotations[TAG_ROUTING_ANNOTATION] = "true"
        if version is not None:
            annotations[VERSION_ANNOTATION] = str(version)
        if annotations:
            body["metadata"] = {"annotations": annotations}
        return self.call(
            "patch", self.api.patch_namespaced_custom_object, name=self.name, body=body
        )

    def check(
        self,
        written: dict[str, Any],
        *,
        knative: bool = False,
        replaces: str | None = None,
        revision: str | None = None,
        stage: str = "",
    ) -> _Outcome:
        """Wait for Ready on the generation just written, then run the smoke request.

        In Knative mode (``knative``) the smoke request goes to the ``latest`` tag URL,
        after waiting until that tag routes to a revision newer than ``replaces`` (or to
        ``revision``, with all traffic, after a promotion). Otherwise it goes to the
        service's cluster-local address.
        """
        generation = int(written.get("metadata", {}).get("generation", 0))

        def settled(status: dict[str, Any]) -> str | None:
            if not knative:
                return None
            return _revision_pending(status, replaces, revision)

        ready = self._wait_ready(generation, settled)
        suffix = f" {stage}" if stage else ""
        if not ready.ok:
            return _Outcome(False, ready.reason + suffix)
        if knative:
            target = _tag_target(ready.status, LATEST_TAG)
            if target is None or not target.get("url"):
                return _Outcome(
                    False,
                    f"KServe published no {LATEST_TAG!r} tag URL for InferenceService "
                    f"{self.name!r} (status.components.predictor.traffic), so the new "
                    f"revision cannot be checked on its own; is the {TAG_ROUTING_ANNOTATION} "
                    "annotation honoured by this KServe?" + suffix,
                )
            url = cluster_local_url(str(target["url"]), self.namespace)
            new_revision = str(target.get("revisionName"))
            where = f"revision {new_revision} ({target.get('percent', 0)}% of traffic) at {url}"
        else:
            url = ready.url or ""
            new_revision = None
            where = url
            if not url:
                return _Outcome(False, f"InferenceService {self.name!r} is Ready but has no URL")
        try:
            self.smoke(url, self.name)
        except Exception as exc:  # noqa: BLE001 - any smoke failure means roll back
            return _Outcome(False, f"smoke request to {where} failed{suffix}: {exc}", url)
        return _Outcome(
            True, f"Ready and smoke request to {where} passed{suffix}", url, new_revision
        )

    def roll_back(
        self, previous_uri: str | None, previous_canary: int | None, *, knative: bool, pin: bool,
        version: str | None = None,
    ) -> str | None:
        """Restore the previous spec and wait for Ready; return what went wrong, if anything.

        With ``pin`` (a Knative canary) the previous ``storageUri`` goes back with
        ``canaryTrafficPercent: 0`` first: KServe then sends all traffic to its
        ``latestRolledoutRevision``, which for a canary that failed before promotion is
        the old revision, already running, while the restored revision starts. Only once
        that is Ready is the previous canary setting put back, so no moment routes all
        traffic to the failed canary. (After a promotion the failed revision is the
        rolled-out one; pinning then changes nothing until the restored revision is Ready,
        as a plain rollback would.)
        """
        if pin:
            pinned = self.patch(previous_uri, 0, tag_routing=True, version=version)
            waited = self._wait_ready(int(pinned.get("metadata", {}).get("generation", 0)))
            if not waited.ok:
                return (
                    f"the restored spec did not become Ready ({waited.reason}); traffic stays "
                    "pinned to the previously rolled-out revision (canaryTrafficPercent: 0)"
                )
        restored = self.patch(previous_uri, previous_canary, tag_routing=knative,
                              version=version)
        waited = self._wait_ready(int(restored.get("metadata", {}).get("generation", 0)))
        if not waited.ok:
            return f"the rollback did not become Ready either ({waited.reason})"
        return None

    def _wait_ready(
        self, generation: int, settled: Callable[[dict[str, Any]], str | None] | None = None
    ) -> _Ready:
        """Poll until ``generation`` is reconciled, Ready is True and ``settled`` says so."""
        deadline = self.clock() + self.timeout_s
        last = "no status yet"
        while True:
            current = self.get()
            if current is None:
                return _Ready(
                    False, f"InferenceService {self.name!r} disappeared while rolling out"
                )
            status = current.get("status") or {}
            if int(status.get("observedGeneration", 0)) >= generation:
                ready = _condition(status, "Ready")
                pending = settled(status) if settled is not None else None
                if ready.get("status") == "True" and pending is None:
                    address = (status.get("address") or {}).get("url")
                    # address.url is cluster-local, which is where the deploy step runs.
                    return _Ready(True, "Ready", address or status.get("url"), status)
                last = pending if ready.get("status") == "True" else _describe_not_ready(ready)
                model_status = status.get("modelStatus") or {}
                if model_status.get("transitionStatus") in _TERMINAL_TRANSITIONS:
                    failure = model_status.get("lastFailureInfo") or {}
                    return _Ready(
                        False,
                        f"KServe gave up loading the model ({model_status['transitionStatus']}: "
                        f"{failure.get('reason', '')} {failure.get('message', '')}".rstrip()
                        + f"); {last}",
                    )
            else:
                last = f"KServe has not reconciled generation {generation} yet"
            if self.clock() >= deadline:
                return _Ready(
                    False, f"timed out after {self.timeout_s:g}s waiting for Ready ({last})"
                )
            self.sleep(self.poll_interval_s)

    def _explain(self, action: str, exc: ApiException) -> str:
        what = f"{action} InferenceService {self.namespace}/{self.name}"
        message = exc.reason
        try:
            message = json.loads(exc.body or "{}").get("message", message)
        except ValueError:
            pass
        hint = {
            401: "the credentials were rejected; check the kubeconfig or ServiceAccount token",
            403: (
                "the ServiceAccount lacks permission; apply manifests/rbac and run the deploy "
                "step as kfp-mlops-deployer in this namespace"
            ),
            404: "is KServe installed? the serving.kserve.io/v1beta1 API was not found",
            409: "someone else changed it at the same time; re-run the deploy step",
            422: "the API server rejected the InferenceService spec; fix the field it names",
        }.get(exc.status or 0, "check the API server and KServe controller logs")
        return f"{what} failed with HTTP {exc.status} ({message}); {hint}"


@dataclass(frozen=True)
class _Ready:
    ok: bool
    reason: str
    url: str | None = None
    status: dict[str, Any] | None = None


def _predictor_status(isvc_or_status: dict[str, Any]) -> dict[str, Any]:
    """``status.components.predictor`` (KServe's ComponentStatusSpec), or {}."""
    status = isvc_or_status.get("status", isvc_or_status) or {}
    return dict((status.get("components") or {}).get("predictor") or {})


def _tag_target(status: dict[str, Any] | None, tag: str) -> dict[str, Any] | None:
    for target in _predictor_status(status or {}).get("traffic") or []:
        if target.get("tag") == tag:
            return dict(target)
    return None


def _revision_pending(
    status: dict[str, Any], replaces: str | None, revision: str | None
) -> str | None:
    """Say what a Ready Knative service still lacks before its ``latest`` tag is checked.

    ``replaces``: the revision created before the patch; a new one must have appeared.
    ``revision``: after a promotion, the tag must still name it, now with 100% of traffic.
    """
    predictor = _predictor_status(status)
    created = predictor.get("latestCreatedRevision")
    if replaces is not None and (not created or created == replaces):
        return f"KServe has not reported a revision newer than {replaces} yet"
    if created and predictor.get("latestReadyRevision") != created:
        return f"revision {created} is not ready yet"
    target = _tag_target(status, LATEST_TAG)
    if target is None:
        return None  # reported by the caller: waiting would not make the tag appear
    routed = target.get("revisionName")
    wanted = revision or created
    if wanted and routed != wanted:
        return f"the {LATEST_TAG!r} tag routes to {routed}, not yet to {wanted}"
    if revision is not None and target.get("percent") != 100:
        return f"revision {revision} has {target.get('percent', 0)}% of traffic, not yet 100%"
    return None


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _describe_not_ready(ready: dict[str, Any]) -> str:
    if not ready:
        return "no Ready condition yet"
    parts = [f"Ready={ready.get('status', 'Unknown')}"]
    if ready.get("reason"):
        parts.append(str(ready["reason"]))
    text = " ".join(parts)
    return f"{text}: {ready['message']}" if ready.get("message") else text
