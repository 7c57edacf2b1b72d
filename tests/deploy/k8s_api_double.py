"""An HTTP double of the Kubernetes API server for KServe InferenceServices.

It listens on 127.0.0.1 and answers as the real API server does for
``/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices[/{name}]``: GET, POST
and PATCH (``application/merge-patch+json`` and ``application/json-patch+json``) with real
status codes and ``Status`` bodies (404 NotFound, 409 AlreadyExists, 415, 422 Invalid),
``metadata.generation`` bumped on spec changes, and bodies validated against the upstream
CRD as the server would. A fake KServe controller fills ``status``: per ``storageUri`` a
``Behaviour`` says after how many GETs the new generation is reconciled and whether Ready
turns True or False (with a message). The model endpoints a Ready service advertises are
served too (``/serving/{name}/v2/models/{name}/ready`` and ``/infer``).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.k8s_schemas import K8sValidationError, validate_crd_object

_COLLECTION = re.compile(
    r"^/apis/serving\.kserve\.io/v1beta1/namespaces/(?P<ns>[^/]+)/inferenceservices"
    r"(?:/(?P<name>[^/?]+))?/?(?:\?.*)?$"
)
_SERVING = re.compile(r"^/serving/(?P<svc>[^/]+)/v2/models/(?P<model>[^/]+)/(?P<op>ready|infer)$")


@dataclass
class Behaviour:
    """How the fake controller treats one storageUri."""

    ready: bool = True
    gets_until_reconciled: int = 2
    message: str = ""
    reason: str = ""
    terminal: bool = False  # also set modelStatus.transitionStatus=BlockedByFailedLoad
    model_ready: bool = True  # what /v2/models/{name}/ready answers once Ready


@dataclass
class _Record:
    body: dict[str, Any]
    gets_since_change: int = 0


@dataclass
class KubeApiDouble:
    """State and configuration of the double; start it with ``serve()``."""

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    objects: dict[tuple[str, str], _Record] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, type
    writes: list[tuple[str, Any]] = field(default_factory=list)  # method, decoded body
    host: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _resource_version: int = 0

    def behaviour_for(self, storage_uri: str) -> Behaviour:
        return self.behaviours.get(storage_uri, Behaviour())

    def body(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.objects[(namespace, name)].body)

    def api_calls(self) -> list[tuple[str, str]]:
        """(method, content type) of every call to the InferenceService API except GET."""
        return [(m, t) for m, p, t in self.requests if m != "GET" and p.startswith("/apis/")]

    # -- the fake KServe controller -------------------------------------------------
    def _reconcile(self, record: _Record) -> None:
        body = record.body
        generation = body["metadata"]["generation"]
        status = body.setdefault("status", {})
        if status.get("observedGeneration") == generation:
            return
        uri = body["spec"]["predictor"]["model"]["storageUri"]
        behaviour = self.behaviour_for(uri)
        if record.gets_since_change < behaviour.gets_until_reconciled:
            return
        name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
        status["observedGeneration"] = generation
        status["url"] = f"http://{name}.{ns}.example.com"
        status["address"] = {"url": f"{self.host}/serving/{name}"}
        condition = {"type": "Ready", "status": "True" if behaviour.ready else "False"}
        if not behaviour.ready:
            condition.update(reason=behaviour.reason or "RevisionFailed", message=behaviour.message)
        status["conditions"] = [condition]
        if behaviour.terminal:
            status["modelStatus"] = {
                "transitionStatus": "BlockedByFailedLoad",
                "lastFailureInfo": {"reason": "ModelLoadFailed", "message": behaviour.message},
            }
        else:
            status["modelStatus"] = {"transitionStatus": "UpToDate"}

    # -- the API -------------------------------------------------------------------
    def handle(
        self, method: str, path: str, content_type: str, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append((method, path, content_type))
            if method in ("POST", "PATCH") and path.startswith("/apis/"):
                self.writes.append((method, json.loads(raw or b"null")))
            serving = _SERVING.match(path)
            if serving:
                return self._serve_model(method, serving["svc"], serving["model"], serving["op"])
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
        if new["spec"] != record.body["spec"]:
            new["metadata"]["generation"] += 1
            record.gets_since_change = 0
            # The controller has not seen the new generation: Ready is no longer known.
            new.setdefault("status", {})["conditions"] = [
                {"type": "Ready", "status": "Unknown", "reason": "RevisionMissing"}
            ]
        self._bump(new)
        record.body = new
        return 200, copy.deepcopy(new)

    def _serve_model(
        self, method: str, svc: str, model: str, op: str
    ) -> tuple[int, dict[str, Any]]:
        record = next((r for (_, n), r in self.objects.items() if n == svc), None)
        if record is None:
            return 404, {"error": f"no service {svc}"}
        uri = record.body["spec"]["predictor"]["model"]["storageUri"]
        if not self.behaviour_for(uri).model_ready:
            return 503, {"error": f"Model with name {model} is not ready."}
        if op == "ready":
            return 200, {"name": model, "ready": True}
        return 200, {
            "model_name": model,
            "outputs": [{"name": "output-0", "shape": [1], "datatype": "INT64", "data": [1]}],
        }

    def _invalid(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        try:
            validate_crd_object({k: v for k, v in body.items() if k != "status"})
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
            code, body = double.handle(self.command, self.path, content_type, raw)
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
