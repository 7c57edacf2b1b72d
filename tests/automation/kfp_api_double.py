"""An HTTP double of the Kubeflow Pipelines API server (REST ``/apis/v2beta1``).

This is a test double at the network boundary: there is no KFP API server on the test
machines, so the real ``kfp.Client`` (and its generated ``kfp_server_api`` REST client)
talks over loopback HTTP to this server instead. It implements only the endpoints
``kfp_mlops.app.automation.submit`` uses, with the status codes and bodies the real server
(KFP 2.x, grpc-gateway with proto field names) sends:

- ``GET  /apis/v2beta1/healthz``
- ``GET  /apis/v2beta1/pipelines`` (``filter`` on ``display_name``) and ``/pipelines/{id}``
- ``POST /apis/v2beta1/pipelines/upload`` and ``/pipelines/upload_version`` (multipart
  ``uploadfile``; 409 with ``{"error_message", "error_details"}`` on a duplicate name,
  400 on an unreadable file or a missing ``pipelineid``)
- ``GET  /apis/v2beta1/pipelines/{id}/versions`` (``filter``, ``sort_by=created_at desc``)
- ``GET|POST /apis/v2beta1/experiments`` (a ``Default`` experiment exists from the start)
- ``POST /apis/v2beta1/runs``, ``GET /apis/v2beta1/runs/{id}``: a run is PENDING, turns
  RUNNING on its first GET and ``final_state`` after ``gets_until_done`` GETs
- ``GET|POST /apis/v2beta1/recurringruns``, ``DELETE /apis/v2beta1/recurringruns/{id}``:
  400 for ``max_concurrency`` outside 1-10 or a missing trigger, as the server does

grpc-gateway errors carry ``{"code", "message", "details"}`` with the HTTP status of the
gRPC code (3 -> 400, 5 -> 404, 6 -> 409). Every request is recorded (method, path,
query, decoded body) so tests can check what the client really sent.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

API = "/apis/v2beta1"
_GRPC_HTTP = {3: 400, 5: 404, 6: 409, 7: 403, 12: 501}


@dataclass
class Recorded:
    """One request as the double received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # decoded JSON, {"uploadfile": ..., "filename": ...} for uploads, or None
    authorization: str = ""  # the Authorization header, as the API server's auth sees it


class ApiError(Exception):
    """Raised inside a handler to answer with a grpc-gateway error body."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class UploadError(Exception):
    """Raised inside an upload handler: the upload endpoints answer {"error_message": ...}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KfpApiDouble:
    """State and behaviour of the fake API server; start it with :func:`serve`."""

    multi_user: bool = False
    gets_until_done: int = 3  # GETs of a run until it reaches final_state
    final_state: str = "SUCCEEDED"
    url: str = ""
    # Fault injection: (method, path after /apis/v2beta1) -> (gRPC code, message), answered once.
    faults: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _run_gets: dict[str, int] = field(default_factory=dict)
    _order: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # The real API server creates this experiment when it starts.
        self._add_experiment({"display_name": "Default", "description": "default experiment"})

    # ------------------------------------------------------------ helpers for tests

    def calls(self, method: str, suffix: str) -> list[Recorded]:
        """Requests with ``method`` whose path ends with ``suffix`` (after /apis/v2beta1)."""
        return [r for r in self.requests if r.method == method and r.path == API + suffix]

    # ------------------------------------------------------------ resources

    def _add_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        experiment = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": body.get("display_name", ""),
            "description": body.get("description") or "",
            "created_at": _now(),
            "namespace": body.get("namespace") or "",
            "storage_state": "AVAILABLE",
        }
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _add_version(self, pipeline_id: str, name: str, description: str,
                     spec: dict[str, Any]) -> dict[str, Any]:
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": str(uuid.uuid4()),
            "display_name": name,
            "name": name,
            "description": description,
            "created_at": _now(),
            "pipeline_spec": spec,
            "_order": next(self._order),
        }
        self.versions[version["pipeline_version_id"]] = version
        return version

    def handle(self, method: str, path: str, query: dict[str, str], body: Any,
               authorization: str = "") -> tuple[int, Any]:
        """Route one request; return (status, JSON body)."""
        with self._lock:
            self.requests.append(Recorded(method, path, query, body, authorization))
            parts = path[len(API):].strip("/").split("/") if path.startswith(API) else []
            route = (method, *parts)
            try:
                fault = self.faults.pop((method, path[len(API):]), None)
                if fault:
                    raise ApiError(*fault)
                result = self._route(route, query, body)
                return 200, {k: v for k, v in result.items() if not k.startswith("_")}
            except ApiError as err:
                status = _GRPC_HTTP.get(err.code, 500)
                return status, {"code": err.code, "message": err.message, "details": []}
            except UploadError as err:
                return err.status, {"error_message": err.message,
                                    "error_details": f"Error: {err.message}"}

    def _route(self, route: tuple[str, ...], query: dict[str, str], body: Any) -> Any:
        match route:
            case ("GET", "healthz"):
                return {"multi_user": self.multi_user, "pipeline_store": "database"}
            case ("GET", "pipelines"):
                return _listing("pipelines", _filtered(self.pipelines.values(), query))
            case ("POST", "pipelines", "upload"):
                return self._upload_pipeline(query, body)
            case ("POST", "pipelines", "upload_version"):
                return self._upload_version(query, body)
            case ("GET", "pipelines", pipeline_id):
                return self._get(self.pipelines, pipeline_id, "Pipeline")
            case ("GET", "pipelines", pipeline_id, "versions"):
                self._get(self.pipelines, pipeline_id, "Pipeline")
                mine = [v for v in self.versions.values() if v["pipeline_id"] == pipeline_id]
                mine.sort(key=lambda v: v["_order"], reverse="desc" in query.get("sort_by", ""))
                found = _filtered(mine, query)[: int(query.get("page_size") or 10)]
                return _listing("pipeline_versions", found)
            case ("GET", "experiments"):
                return _listing("experiments", _filtered(self.experiments.values(), query))
            case ("POST", "experiments"):
                name = (body or {}).get("display_name")
                if not name:
                    raise ApiError(3, "Invalid input error: Experiment display name is empty")
                if any(e["display_name"] == name for e in self.experiments.values()):
                    raise ApiError(6, f"Already exist error: experiment {name!r} already exists")
                return self._add_experiment(body)
            case ("POST", "runs"):
                return self._create_run(body or {})
            case ("GET", "runs", run_id):
                return self._get_run(run_id)
            case ("GET", "recurringruns"):
                found = [r for r in self.recurring_runs.values()
                         if r["experiment_id"] == query.get("experiment_id", r["experiment_id"])]
                # The proto names this field recurringRuns, so that is its JSON key.
                return _listing("recurringRuns", _filtered(found, query))
            case ("POST", "recurringruns"):
                return self._create_recurring_run(body or {})
            case ("DELETE", "recurringruns", recurring_id):
                self._get(self.recurring_runs, recurring_id, "RecurringRun")
                del self.recurring_runs[recurring_id]
                return {}
        raise ApiError(5, "Not Found")

    @staticmethod
    def _get(store: dict[str, dict[str, Any]], key: str, kind: str) -> dict[str, Any]:
        if key not in store:
            raise ApiError(5, f"Not found error: {kind} {key} not found")
        return store[key]

    def _read_spec(self, body: Any, fallback: str) -> dict[str, Any]:
        if not isinstance(body, dict) or "uploadfile" not in body:
            raise UploadError(400, fallback)
        try:
            docs = [d for d in yaml.safe_load_all(body["uploadfile"]) if d]
        except yaml.YAMLError:
            raise UploadError(400, fallback) from None
        if not docs or "pipelineInfo" not in docs[0]:
            raise UploadError(400, fallback)
        return dict(docs[0])

    def _upload_pipeline(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        spec = self._read_spec(body, "Failed to read pipeline from file")
        name = query.get("name") or body.get("filename", "")
        if any(p["display_name"] == name for p in self.pipelines.values()):
            raise UploadError(409, "Failed to create a pipeline and a pipeline version")
        pipeline = {
            "pipeline_id": str(uuid.uuid4()),
            "display_name": name,
            "name": name,
            "description": query.get("description", ""),
            "created_at": _now(),
            "namespace": query.get("namespace", ""),
        }
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self._add_version(pipeline["pipeline_id"], name, pipeline["description"], spec)
        return pipeline

    def _upload_version(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        spec = self._read_spec(body, "Failed to create a pipeline version")
        pipeline_id = query.get("pipelineid", "")
        if pipeline_id not in self.pipelines:
            raise UploadError(400, "Failed to create a pipeline version")
        name = query.get("name") or body.get("filename", "")
        if any(v["pipeline_id"] == pipeline_id and v["display_name"] == name
               for v in self.versions.values()):
            raise UploadError(409, "Failed to create a pipeline version")
        return self._add_version(pipeline_id, name, query.get("description", ""), spec)

    def _check_source(self, body: dict[str, Any]) -> None:
        if body.get("experiment_id") and body["experiment_id"] not in self.experiments:
            raise ApiError(5, f"Not found error: Experiment {body['experiment_id']} not found")
        ref = body.get("pipeline_version_reference")
        if ref:
            version = self.versions.get(ref.get("pipeline_version_id", ""))
            if version is None or version["pipeline_id"] != ref.get("pipeline_id"):
                raise ApiError(5, f"Not found error: PipelineVersion {ref} not found")
        elif not body.get("pipeline_spec"):
            raise ApiError(3, "Invalid input error: Pipeline spec or pipeline version "
                              "reference is required")

    def _create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_source(body)
        if not body.get("display_name"):
            raise ApiError(3, "Invalid input error: The run name is empty")
        ref = body.get("pipeline_version_reference") or {}
        run = {
            **body,
            "run_id": str(uuid.uuid4()),
            "pipeline_version_id": ref.get("pipeline_version_id", ""),
            "storage_state": "AVAILABLE",
            "created_at": _now(),
            "state": "PENDING",
            "state_history": [{"update_time": _now(), "state": "PENDING"}],
        }
        self.runs[run["run_id"]] = run
        self._run_gets[run["run_id"]] = 0
        return run

    def _get_run(self, run_id: str) -> dict[str, Any]:
        run = self._get(self.runs, run_id, "Run")
        self._run_gets[run_id] += 1
        gets = self._run_gets[run_id]
        state = self.final_state if gets >= self.gets_until_done else "RUNNING"
        if state != run["state"]:
            run["state"] = state
            run["state_history"].append({"update_time": _now(), "state": state})
            if state in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"):
                run["finished_at"] = _now()
        return run

    def _create_recurring_run(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_source(body)
        concurrency = int(body.get("max_concurrency") or 0)
        if not 1 <= concurrency <= 10:
            raise ApiError(3, "Invalid input error: The max concurrency of the recurring run "
                              f"is out of range. Support 1-10. Received {concurrency}.")
        trigger = body.get("trigger") or {}
        if not trigger.get("cron_schedule") and not trigger.get("periodic_schedule"):
            raise ApiError(3, "Invalid input error: Trigger is required")
        recurring = {
            **body,
            "recurring_run_id": str(uuid.uuid4()),
            "max_concurrency": str(concurrency),  # int64 is a JSON string in proto3 JSON
            "created_at": _now(),
            "updated_at": _now(),
            "status": "ENABLED" if body.get("mode", "ENABLE") == "ENABLE" else "DISABLED",
        }
        self.recurring_runs[recurring["recurring_run_id"]] = recurring
        return recurring


def _filtered(items: Any, query: dict[str, str]) -> list[dict[str, Any]]:
    """Apply a KFP ``filter`` (JSON Filter proto) with EQUALS predicates on string keys."""
    found = list(items)
    if not query.get("filter"):
        return found
    for predicate in json.loads(query["filter"]).get("predicates", []):
        if predicate.get("operation") not in (1, "EQUALS"):
            raise ApiError(12, f"filter operation {predicate.get('operation')} not in the double")
        value = predicate.get("stringValue", predicate.get("string_value"))
        found = [item for item in found if item.get(predicate["key"]) == value]
    return found


def _listing(key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    # proto3 JSON leaves out empty lists and zero counts.
    if not items:
        return {}
    public = [{k: v for k, v in item.items() if not k.startswith("_")} for item in items]
    return {key: public, "total_size": len(public)}


class _Handler(BaseHTTPRequestHandler):
    double: KfpApiDouble

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Keep test output quiet."""

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        body: Any = None
        if ctype.startswith("multipart/form-data"):
            body = _multipart(ctype, raw)
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, {"code": 3, "message": "invalid JSON body", "details": []})
                return
        status, payload = self.double.handle(method, parts.path, query, body,
                                             self.headers.get("Authorization", ""))
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            out["uploadfile"] = part.get_payload(decode=True).decode()
            out["filename"] = part.get_filename() or ""
    return out


@contextmanager
def serve(double: KfpApiDouble | None = None) -> Iterator[KfpApiDouble]:
    """Run ``double`` on 127.0.0.1 at a free port; always shut it down afterwards."""
    double = double or KfpApiDouble()
    handler = type("Handler", (_Handler,), {"double": double})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
