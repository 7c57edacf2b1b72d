"""Roll a published model version out to a KServe InferenceService, or roll it back.

``deploy_model`` is the core of the pipeline's deploy step. It talks to the Kubernetes API
with the official ``kubernetes`` client (``serving.kserve.io/v1beta1`` InferenceServices):

1. create the InferenceService if it is absent, else merge-patch the predictor's
   ``storageUri`` (plus ``canaryTrafficPercent`` for a Knative canary);
2. poll until KServe has reconciled that generation and reports ``Ready=True``, failing
   early when KServe marks the model load as failed, or on timeout;
3. send a smoke request to the service;
4. promote (drop ``canaryTrafficPercent`` so the new revision takes all traffic) or roll
   back (restore the previous ``storageUri`` and canary setting) and say why.

The model registry's stage change is the caller's job, driven by ``DeployResult``.
Only the RBAC in ``manifests/rbac`` is needed: get/list/watch/create/patch.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes import client, config
from kubernetes.client.rest import ApiException

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"

# KServe's modelStatus.transitionStatus values that no amount of waiting will fix.
_TERMINAL_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}

DeployStatus = Literal["created", "promoted", "rolled_back", "failed"]
SmokeRequest = Callable[[str, str], None]
"""Called as ``smoke(url, model_name)`` once the service is Ready; raises on failure."""


class DeployError(RuntimeError):
    """The Kubernetes API refused a request; nothing was rolled out by that request."""


class KubeConfigError(RuntimeError):
    """Neither in-cluster configuration nor a kubeconfig file could be loaded."""


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy_model`` did and why.

    ``status`` is ``created`` (new service, healthy), ``promoted`` (new version takes all
    traffic), ``rolled_back`` (previous ``storageUri`` restored) or ``failed`` (a new
    service never became healthy, so there was nothing to roll back to).
    """

    status: DeployStatus
    reason: str
    name: str
    namespace: str
    storage_uri: str
    previous_storage_uri: str | None
    url: str | None = None

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


def inference_service(
    name: str,
    namespace: str,
    storage_uri: str,
    *,
    runtime: str = "kfp-mlops-sklearn",
    service_account: str = "kfp-mlops-s3",
    canary_traffic_percent: int | None = None,
) -> dict[str, Any]:
    """Build the InferenceService body that ``deploy_model`` creates (mirrors manifests/)."""
    predictor: dict[str, Any] = {
        "serviceAccountName": service_account,
        "model": {
            "modelFormat": {"name": "sklearn"},
            "runtime": runtime,
            "protocolVersion": "v2",
            "storageUri": storage_uri,
        },
    }
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "kfp-mlops"},
        },
        "spec": {"predictor": predictor},
    }


def default_smoke_request(url: str, model_name: str, *, timeout_s: float = 10.0) -> None:
    """Check the Open Inference Protocol (V2) model-ready endpoint; raise unless 200."""
    ready_url = f"{url.rstrip('/')}/v2/models/{model_name}/ready"
    with urllib.request.urlopen(ready_url, timeout=timeout_s) as response:  # noqa: S310
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
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                body = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise RuntimeError(f"POST {infer_url} answered {exc.code}: {detail}") from exc
        if not isinstance(body.get("outputs"), list):
            raise RuntimeError(f"POST {infer_url} answered without an 'outputs' list: {body}")

    return smoke


def deploy_model(
    name: str,
    namespace: str,
    storage_uri: str,
    *,
    runtime: str = "kfp-mlops-sklearn",
    service_account: str = "kfp-mlops-s3",
    canary_traffic_percent: int | None = None,
    timeout_s: float = 600.0,
    poll_interval_s: float = 5.0,
    api_client: client.ApiClient | None = None,
    smoke_request: SmokeRequest | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> DeployResult:
    """Create or update InferenceService ``name``, check it, then promote or roll back.

    ``canary_traffic_percent`` (1-99, Knative mode only) sends that share of traffic to
    the new revision until the smoke request passes. ``timeout_s`` bounds each wait for
    Ready; ``sleep``/``clock`` are injectable so tests need no wall time. Raises
    ``DeployError`` when the API refuses a create or patch, ``ValueError`` on bad input.
    """
    if canary_traffic_percent is not None and not 0 < canary_traffic_percent < 100:
        raise ValueError(
            f"canary_traffic_percent={canary_traffic_percent} is out of range; "
            "give 1-99, or None to send all traffic to the new version at once"
        )
    api = client.CustomObjectsApi(api_client if api_client is not None else load_kube_config())
    smoke = smoke_request if smoke_request is not None else default_smoke_request
    rollout = _Rollout(api, name, namespace, poll_interval_s, sleep, clock)
    existing = rollout.get()

    if existing is None:
        body = inference_service(
            name, namespace, storage_uri, runtime=runtime, service_account=service_account
        )
        created = rollout.call("create", api.create_namespaced_custom_object, body=body)
        outcome = rollout.check(created, timeout_s, smoke)
        status: DeployStatus = "created" if outcome.ok else "failed"
        reason = (
            outcome.reason
            if outcome.ok
            else (
                f"{outcome.reason}; nothing to roll back to (first deployment of {name!r}), "
                "the unhealthy InferenceService was left for inspection"
            )
        )
        return DeployResult(status, reason, name, namespace, storage_uri, None, outcome.url)

    predictor = (existing.get("spec") or {}).get("predictor") or {}
    previous_uri = (predictor.get("model") or {}).get("storageUri")
    previous_canary = predictor.get("canaryTrafficPercent")
    patched = rollout.patch(storage_uri, canary_traffic_percent)
    outcome = rollout.check(patched, timeout_s, smoke)
    if outcome.ok and canary_traffic_percent is not None:
        # Promote: without canaryTrafficPercent the latest revision takes all traffic.
        promoted = rollout.patch(storage_uri, None)
        outcome = rollout.check(promoted, timeout_s, smoke, stage="after promotion")
    if outcome.ok:
        return DeployResult(
            "promoted", outcome.reason, name, namespace, storage_uri, previous_uri, outcome.url
        )

    rollout.patch(previous_uri, previous_canary)
    reason = f"rolled back to {previous_uri}: {outcome.reason}"
    return DeployResult("rolled_back", reason, name, namespace, storage_uri, previous_uri, None)


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    reason: str
    url: str | None = None


@dataclass
class _Rollout:
    """The API calls and the Ready wait for one InferenceService."""

    api: client.CustomObjectsApi
    name: str
    namespace: str
    poll_interval_s: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]

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

    def patch(self, storage_uri: str | None, canary: int | None) -> dict[str, Any]:
        # JSON merge patch: a null canaryTrafficPercent removes the field.
        body = {
            "spec": {
                "predictor": {
                    "model": {"storageUri": storage_uri},
                    "canaryTrafficPercent": canary,
                }
            }
        }
        return self.call(
            "patch", self.api.patch_namespaced_custom_object, name=self.name, body=body
        )

    def check(
        self,
        written: dict[str, Any],
        timeout_s: float,
        smoke: SmokeRequest,
        *,
        stage: str = "",
    ) -> _Outcome:
        """Wait for Ready on the generation just written, then run the smoke request."""
        ready = self._wait_ready(int(written.get("metadata", {}).get("generation", 0)), timeout_s)
        suffix = f" {stage}" if stage else ""
        if not ready.ok:
            return _Outcome(False, ready.reason + suffix)
        url = ready.url
        if not url:
            return _Outcome(False, f"InferenceService {self.name!r} is Ready but has no URL")
        try:
            smoke(url, self.name)
        except Exception as exc:  # noqa: BLE001 - any smoke failure means roll back
            return _Outcome(False, f"smoke request to {url} failed{suffix}: {exc}", url)
        return _Outcome(True, f"Ready and smoke request to {url} passed{suffix}", url)

    def _wait_ready(self, generation: int, timeout_s: float) -> _Outcome:
        deadline = self.clock() + timeout_s
        last = "no status yet"
        while True:
            current = self.get()
            if current is None:
                return _Outcome(
                    False, f"InferenceService {self.name!r} disappeared while rolling out"
                )
            status = current.get("status") or {}
            if int(status.get("observedGeneration", 0)) >= generation:
                ready = _condition(status, "Ready")
                if ready.get("status") == "True":
                    address = (status.get("address") or {}).get("url")
                    # address.url is cluster-local, which is where the deploy step runs.
                    return _Outcome(True, "Ready", address or status.get("url"))
                last = _describe_not_ready(ready)
                model_status = status.get("modelStatus") or {}
                if model_status.get("transitionStatus") in _TERMINAL_TRANSITIONS:
                    failure = model_status.get("lastFailureInfo") or {}
                    return _Outcome(
                        False,
                        f"KServe gave up loading the model ({model_status['transitionStatus']}: "
                        f"{failure.get('reason', '')} {failure.get('message', '')}".rstrip()
                        + f"); {last}",
                    )
            else:
                last = f"KServe has not reconciled generation {generation} yet"
            if self.clock() >= deadline:
                return _Outcome(False, f"timed out after {timeout_s:g}s waiting for Ready ({last})")
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
