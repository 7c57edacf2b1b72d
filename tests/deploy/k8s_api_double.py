"""An HTTP double of the Kubernetes API server, KServe's controller and Knative's gateway.

It listens on 127.0.0.1 and plays three parts:

**The API server** for
``/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices[/{name}]``: GET, POST
and PATCH (``application/merge-patch+json`` and ``application/json-patch+json``) with real
status codes and ``Status`` bodies (404 NotFound, 409 AlreadyExists, 415, 422 Invalid),
``metadata.generation`` bumped on spec changes, and bodies validated against the upstream
CRD as the server would.

**KServe's controller**, which fills ``status`` once a change has been seen for
``Behaviour.gets_until_reconciled`` GETs (``Behaviour`` is chosen per ``storageUri``). The
mode is the ``serving.kserve.io/deploymentMode`` annotation, else ``default_mode``
(``Standard``, KServe's default since 0.16); it is recorded in ``status.deploymentMode``.

- Standard (RawDeployment) mode: one Deployment, rolled in place; ``canaryTrafficPercent``
  is ignored, as upstream (only the Knative reconciler reads it). Until a new model is
  Ready the previous one keeps serving.
- Knative mode models what the upstream KServe code at the commit of
  ``../shared/schemas/kserve`` (aaac4e29, after v0.20.0) does:
  ``pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go``
  (``createKnativeService``) builds the route: with ``canaryTrafficPercent`` and a
  ``latestRolledoutRevision``, the latest revision gets that percent (tag ``latest`` when
  ``serving.kserve.io/enable-tag-routing: "true"``) and ``latestRolledoutRevision`` the
  rest (tag ``prev``); else the latest revision gets 100%. Knative resolves
  ``latestRevision: true`` to its latest *ready* revision and gives each tagged target the
  URL ``http://{tag}-{isvc}-predictor.{ns}.example.com`` (Knative's default tag and domain
  templates; the Knative service is KServe's ``PredictorServiceName`` = ``{isvc}-predictor``).
  ``pkg/apis/serving/v1beta1/inference_service_status.go`` (``PropagateStatus``) then sets
  ``status.components.predictor``: ``latestCreatedRevision``, ``latestReadyRevision``,
  ``latestRolledoutRevision`` / ``previousRolledoutRevision`` (moved only when the latest
  ready revision gets 100%), and ``traffic`` (tag, revisionName, percent, latestRevision,
  url). A new revision ``{isvc}-predictor-0000N`` is created whenever the revision
  template (predictor spec without ``canaryTrafficPercent``, and annotations) changes;
  ``Ready`` follows the latest created revision, as Knative's ConfigurationsReady does.

**Knative's ingress gateway**: a request whose Host (or absolute request URI, as an HTTP
client sends it through a proxy) is not 127.0.0.1 is routed by host name as the gateway
does. ``latest-{isvc}-predictor.{ns}...`` / ``prev-...`` reach the revision the tag names;
``{isvc}.{ns}...`` and ``{isvc}-predictor.{ns}...`` are split over the traffic targets by
their percent (smooth weighted round robin, so 90/10 sends 9 of 10 requests to the
first). Tests point ``http_proxy`` at the double so that urllib resolves the cluster-local
names through it; each revision answers ``/v2/models/{name}/ready`` and ``/infer`` with
200, or 503 when its ``storageUri``'s ``Behaviour.model_ready`` is False, so a broken new
revision can sit beside a healthy old one.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.k8s_schemas import K8sValidationError, validate_crd_object

_COLLECTION = re.compile(
    r"^/apis/serving\.kserve\.io/v1beta1/namespaces/(?P<ns>[^/]+)/inferenceservices"
    r"(?:/(?P<name>[^/?]+))?/?(?:\?.*)?$"
)
_MODEL = re.compile(r"^/v2/models/(?P<model>[^/]+)/(?P<op>ready|infer)$")
_LOOPBACK = {"127.0.0.1", "localhost", ""}
_TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
_MODE = "serving.kserve.io/deploymentMode"
_MODE_ALIASES = {"Serverless": "Knative", "RawDeployment": "Standard"}
DOMAIN = "example.com"  # Knative's default domain


@dataclass
class Behaviour:
    """How the fake controller and the model server treat one storageUri."""

    ready: bool = True
    gets_until_reconciled: int = 2
    message: str = ""
    reason: str = ""
    terminal: bool = False  # also set modelStatus.transitionStatus=BlockedByFailedLoad
    model_ready: bool = True  # what /v2/models/{name}/ready answers once it serves


@dataclass
class Revision:
    """A Knative revision of the predictor: an immutable snapshot of its template."""

    name: str
    storage_uri: str
    template: dict[str, Any]
    ready: bool


@dataclass
class _Record:
    body: dict[str, Any]
    gets_since_change: int = 0
    dirty: bool = True  # a change the controller has not reconciled yet
    revisions: list[Revision] = field(default_factory=list)
    serving_uri: str | None = None  # Standard mode: what the Deployment serves
    weights: dict[int, int] = field(default_factory=dict)  # gateway round robin state


@dataclass
class KubeApiDouble:
    """State and configuration of the double; start it with ``serve()``."""

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    default_behaviour: Behaviour = field(default_factory=Behaviour)
    default_mode: str = "Standard"  # inferenceservice-config's defaultDeploymentMode
    objects: dict[tuple[str, str], _Record] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, type
    writes: list[tuple[str, Any]] = field(default_factory=list)  # method, decoded body
    served: list[tuple[str, str, str, int]] = field(default_factory=list)  # host, path, rev, code
    host: str = ""
    # The CRD folder bodies are validated against (tests.k8s_schemas.kserve_crds), as the
    # API server of that KServe release would; None: the newest vendored CRDs.
    crds: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _resource_version: int = 0

    def behaviour_for(self, storage_uri: str) -> Behaviour:
        return self.behaviours.get(storage_uri, self.default_behaviour)

    def body(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.objects[(namespace, name)].body)

    def revisions(self, namespace: str, name: str) -> list[Revision]:
        return list(self.objects[(namespace, name)].revisions)

    def verbs(self) -> set[tuple[str, str]]:
        """(resource, RBAC verb) of every InferenceService API request received so far.

        The verb the API server's authorizer checks: GET of one object is ``get``, of the
        collection ``list`` (``watch`` with ``?watch=true``), POST ``create``, PATCH
        ``patch``, PUT ``update``, DELETE ``delete``.
        """
        found = set()
        for method, path, _ in self.requests:
            match = _COLLECTION.match(path)
            if not match:
                continue
            if method == "GET":
                verb = "get" if match["name"] else ("watch" if "watch=" in path else "list")
            else:
                verb = {"POST": "create", "PATCH": "patch", "PUT": "update",
                        "DELETE": "delete"}[method]
            found.add(("inferenceservices", verb))
        return found

    def api_calls(self) -> list[tuple[str, str]]:
        """(method, content type) of every call to the InferenceService API except GET."""
        return [(m, t) for m, p, t in self.requests if m != "GET" and p.startswith("/apis/")]

    # -- the fake KServe controller -------------------------------------------------
    def _reconcile(self, record: _Record) -> None:
        body = record.body
        if not record.dirty:
            return
        uri = body["spec"]["predictor"]["model"]["storageUri"]
        behaviour = self.behaviour_for(uri)
        if record.gets_since_change < behaviour.gets_until_reconciled:
            return
        record.dirty = False
        name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
        status = body.setdefault("status", {})
        annotations = body["metadata"].get("annotations") or {}
        if "deploymentMode" not in status:  # KServe keeps the mode it chose first
            mode = annotations.get(_MODE) or self.default_mode
            status["deploymentMode"] = _MODE_ALIASES.get(mode, mode)
        status["observedGeneration"] = body["metadata"]["generation"]
        if status["deploymentMode"] == "Knative":
            ready = self._reconcile_knative(record, behaviour)
        else:
            ready = behaviour.ready
            if ready:
                record.serving_uri = uri
            # Standard mode: the ingress host and the predictor's cluster-local Service.
            status["url"] = f"http://{name}-{ns}.{DOMAIN}"
            status["address"] = {"url": f"http://{name}-predictor.{ns}.svc.cluster.local"}
            status["components"] = {"predictor": {"url": status["url"]}}
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        if not ready:
            condition.update(reason=behaviour.reason or "RevisionFailed", message=behaviour.message)
        status["conditions"] = [condition]
        if behaviour.terminal:
            status["modelStatus"] = {
                "transitionStatus": "BlockedByFailedLoad",
                "lastFailureInfo": {"reason": "ModelLoadFailed", "message": behaviour.message},
            }
        else:
            status["modelStatus"] = {"transitionStatus": "UpToDate"}

    def _reconcile_knative(self, record: _Record, behaviour: Behaviour) -> bool:
        body = record.body
        name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
        predictor = body["spec"]["predictor"]
        annotations = body["metadata"].get("annotations") or {}
        template = {
            "predictor": {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"},
            "annotations": annotations,
        }
        if not record.revisions or record.revisions[-1].template != template:
            record.revisions.append(
                Revision(
                    f"{name}-predictor-{len(record.revisions) + 1:05d}",
                    predictor["model"]["storageUri"],
                    copy.deepcopy(template),
                    behaviour.ready,
                )
            )
        created = record.revisions[-1]
        ready_revisions = [r for r in record.revisions if r.ready]
        latest_ready = ready_revisions[-1].name if ready_revisions else ""
        status = body["status"]
        component = status.setdefault("components", {}).setdefault("predictor", {})

        # ksvc_reconciler.go, createKnativeService: the route's traffic targets.
        tags = annotations.get(_TAG_ROUTING) == "true"
        canary = predictor.get("canaryTrafficPercent")
        rolled_out = component.get("latestRolledoutRevision", "")
        latest_target: dict[str, Any] = {"latestRevision": True, "percent": 100}
        if tags:
            latest_target["tag"] = "latest"
        targets = [latest_target]
        if canary is not None and rolled_out:
            latest_target["percent"] = canary
            if canary < 100:
                targets.append(
                    {
                        "tag": "prev",
                        "revisionName": rolled_out,
                        "latestRevision": False,
                        "percent": 100 - canary,
                    }
                )
        # Knative's Route status: latestRevision resolves to the latest ready revision,
        # and every tagged target gets its own host name.
        traffic = []
        for target in targets:
            revision = latest_ready if target["latestRevision"] else target["revisionName"]
            if not revision:
                continue
            entry = {**target, "revisionName": revision}
            if "tag" in target:
                entry["url"] = f"http://{target['tag']}-{name}-predictor.{ns}.{DOMAIN}"
            traffic.append(entry)

        # inference_service_status.go, PropagateStatus: the rolled-out revisions.
        component["latestCreatedRevision"] = created.name
        per_revision: dict[str, int] = {}
        for entry in traffic:
            per_revision[entry["revisionName"]] = (
                per_revision.get(entry["revisionName"], 0) + entry["percent"]
            )
        for entry in traffic:
            if entry["revisionName"] != latest_ready or not entry["latestRevision"]:
                continue
            if component.get("latestRolledoutRevision", "") != latest_ready:
                if entry["percent"] == 100:
                    if component.get("latestRolledoutRevision"):
                        component["previousRolledoutRevision"] = component[
                            "latestRolledoutRevision"
                        ]
                    component["latestRolledoutRevision"] = latest_ready
            elif (
                latest_ready == created.name
                and entry["percent"] < 100
                and per_revision.get(entry["revisionName"]) == 100
                and component.get("previousRolledoutRevision")
            ):
                component["latestRolledoutRevision"] = component["previousRolledoutRevision"]
        if latest_ready:
            component["latestReadyRevision"] = latest_ready
        component["traffic"] = traffic
        component["url"] = f"http://{name}-predictor.{ns}.{DOMAIN}"
        component["address"] = {"url": f"http://{name}-predictor.{ns}.svc.cluster.local"}
        # KServe's ingress: the InferenceService's own host names.
        status["url"] = f"http://{name}.{ns}.{DOMAIN}"
        status["address"] = {"url": f"http://{name}.{ns}.svc.cluster.local"}
        return created.ready

    # -- Knative's ingress gateway --------------------------------------------------
    def _gateway(self, method: str, host: str, path: str) -> tuple[int, dict[str, Any]]:
        label, _, rest = host.partition(".")
        namespace = rest.split(".")[0]
        model = _MODEL.match(urlsplit(path).path)
        for (ns, name), record in self.objects.items():
            if ns != namespace:
                continue
            revision = self._route(record, name, label)
            if revision is None:
                continue
            uri = self._uri_of(record, revision)
            code, answer = self._serve_model(uri, model)
            self.served.append((host, path, revision, code))
            return code, answer
        return 404, {"error": f"no route for host {host}"}

    def _route(self, record: _Record, name: str, label: str) -> str | None:
        """The revision (Standard mode: "deployment") a host name reaches, if any."""
        status = record.body.get("status") or {}
        if status.get("deploymentMode") != "Knative":
            if label in (name, f"{name}-predictor") and record.serving_uri:
                return "deployment"
            return None
        traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
        for entry in traffic:
            if "tag" in entry and label == f"{entry['tag']}-{name}-predictor":
                return str(entry["revisionName"])
        if label not in (name, f"{name}-predictor") or not traffic:
            return None
        # Smooth weighted round robin over the targets, by percent.
        for index, entry in enumerate(traffic):
            record.weights[index] = record.weights.get(index, 0) + entry["percent"]
        chosen = max(range(len(traffic)), key=lambda i: record.weights[i])
        record.weights[chosen] -= 100
        return str(traffic[chosen]["revisionName"])

    def _uri_of(self, record: _Record, revision: str) -> str:
        if revision == "deployment":
            return str(record.serving_uri)
        return next(r.storage_uri for r in record.revisions if r.name == revision)

    def _serve_model(self, uri: str, model: re.Match[str] | None) -> tuple[int, dict[str, Any]]:
        if model is None:
            return 404, {"error": "not found"}
        name = model["model"]
        if not self.behaviour_for(uri).model_ready:
            return 503, {"error": f"Model with name {name} is not ready."}
        if model["op"] == "ready":
            return 200, {"name": name, "ready": True}
        return 200, {
            "model_name": name,
            "outputs": [{"name": "output-0", "shape": [1], "datatype": "INT64", "data": [1]}],
        }

    # -- the API -------------------------------------------------------------------
    def handle(
        self, method: str, path: str, content_type: str, raw: bytes, host: str = ""
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append((method, path, content_type))
            if path.startswith("http://"):  # absolute URI: the client used us as its proxy
                parts = urlsplit(path)
                host, path = parts.hostname or "", parts.path
            if host.split(":")[0] not in _LOOPBACK:
                return self._gateway(method, host.split(":")[0], path)
            if method in ("POST", "PATCH") and path.startswith("/apis/"):
                self.writes.append((method, json.loads(raw or b"null")))
            match = _COLLECTION.match(path)
            if not match:
                return _status(
                    404, "NotFound", f"the server could not find the requested resource {path}"
                )
            ns, name = match["ns"], match["name"]
            if method == "GET" and name:
                return self._get(ns, name)
            if method == "GET":
                items = [copy.deepcopy(r.body) for (n, _), r in self.objects.items() if n == ns]
                return 200, {
                    "apiVersion": "serving.kserve.io/v1beta1",
                    "kind": "InferenceServiceList",
                    "items": items,
                }
            if method == "POST" and not name:
                return self._create(ns, raw)
            if method == "PATCH" and name:
                return self._patch(ns, name, content_type, raw)
            return _status(405, "MethodNotAllowed", f"{method} is not supported on {path}")

    def _get(self, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        record = self.objects.get((ns, name))
        if record is None:
            return _not_found(name)
        record.gets_since_change += 1
        self._reconcile(record)
        return 200, copy.deepcopy(record.body)

    def _create(self, ns: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        body = json.loads(raw)
        name = body.get("metadata", {}).get("name")
        if (ns, name) in self.objects:
            return _status(
                409, "AlreadyExists", f'inferenceservices.serving.kserve.io "{name}" already exists'
            )
        body["metadata"].update(namespace=ns, generation=1, uid=str(uuid.uuid4()))
        invalid = self._invalid(body)
        if invalid:
            return invalid
        self._bump(body)
        self.objects[(ns, name)] = _Record(body)
        return 201, copy.deepcopy(body)

    def _patch(
        self, ns: str, name: str, content_type: str, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        record = self.objects.get((ns, name))
        if record is None:
            return _not_found(name)
        patch = json.loads(raw)
        if content_type == "application/merge-patch+json":
            new = _merge_patch(copy.deepcopy(record.body), patch)
        elif content_type == "application/json-patch+json":
            new = _json_patch(copy.deepcopy(record.body), patch)
        else:
            return _status(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                f"application/apply-patch+yaml (got {content_type!r})",
            )
        invalid = self._invalid(new)
        if invalid:
            return invalid
        old_meta, new_meta = record.body["metadata"], new["metadata"]
        if new["spec"] != record.body["spec"]:
            new_meta["generation"] += 1
            # The controller has not seen the new generation: Ready is no longer known.
            new.setdefault("status", {})["conditions"] = [
                {"type": "Ready", "status": "Unknown", "reason": "RevisionMissing"}
            ]
        if new["spec"] != record.body["spec"] or new_meta.get("annotations") != old_meta.get(
            "annotations"
        ):
            record.gets_since_change = 0
            record.dirty = True
        self._bump(new)
        record.body = new
        return 200, copy.deepcopy(new)

    def _invalid(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        try:
            validate_crd_object({k: v for k, v in body.items() if k != "status"}, self.crds)
        except K8sValidationError as exc:
            return _status(422, "Invalid", str(exc))
        return None

    def _bump(self, body: dict[str, Any]) -> None:
        self._resource_version += 1
        body["metadata"]["resourceVersion"] = str(self._resource_version)


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _not_found(name: str) -> tuple[int, dict[str, Any]]:
    return _status(404, "NotFound", f'inferenceservices.serving.kserve.io "{name}" not found')


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _json_patch(target: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 JSON patch (add, replace, remove on object members)."""
    for op in operations:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]
        ]
        node: Any = target
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if op["op"] in ("add", "replace"):
            node[last] = op["value"]
        elif op["op"] == "remove":
            del node[last]
        else:
            raise ValueError(f"unsupported JSON patch op {op['op']}")
    return target


def serve(double: KubeApiDouble) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start ``double`` on a free port of 127.0.0.1; the caller must shut it down."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            host = self.headers.get("Host") or ""
            code, body = double.handle(self.command, self.path, content_type, raw, host)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep pytest output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    double.host = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return server, thread
