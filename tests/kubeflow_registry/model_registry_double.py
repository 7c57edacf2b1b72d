"""An HTTP double of the Kubeflow Model Registry server v0.3.4 (REST API v1alpha3).

It listens on 127.0.0.1 and answers as the server Kubeflow 1.11 installs does, as far as
the suite and the official ``model-registry`` 0.3.4 client use it. Every exchange is
checked against the API's own OpenAPI document, vendored unmodified in
``tests/fixtures/model-registry/v0.3.4/model-registry.yaml`` (kubeflow/model-registry
``api/openapi/model-registry.yaml`` at 6d6d7f5e, tag v0.3.4):

- the request's method and path must be an operation of the spec, else 404 with chi's
  plain ``404 page not found`` (what the server's router answers, e.g. to the newer
  clients' ``/api/model_registry/v1`` paths);
- query parameters must be declared for that operation and match their schemas (enums
  of ``orderBy``, ``sortOrder``, ``artifactType``);
- the body must match the operation's ``requestBody`` schema, with ``oneOf`` types
  picked by their ``discriminator`` (``artifactType`` for artifacts, ``metadataType``
  for custom property values), no field the schema does not declare (the server's
  generated handlers decode with ``DisallowUnknownFields``) and no ``readOnly`` field
  (OpenAPI: a request SHOULD NOT send them; here stricter than the server, which ignores
  them); a violation is answered 400 with the spec's ``Error`` body, as the server does;
- every response the double sends is validated against the operation's response schema
  for that status.

Every violation is also recorded in ``double.violations`` so a test can assert there
were none. Entities are stored as the server stores them (upstream
``internal/server/openapi/api_model_registry_service_service.go``, read at v0.3.4):
ids are decimal strings (RegisteredModel, ModelVersion, ServingEnvironment and
InferenceService share the MLMD context id sequence; artifacts and serve executions have
their own), ``createTimeSinceEpoch``/``lastUpdateTimeSinceEpoch`` are millisecond
strings, names are unique (versions within their registered model, inference services
within their environment, artifacts within their version) and a second create answers
409; a missing entity answers 404; ``Error.code`` is the HTTP status text
(``helpers.go`` ``ErrorResponse``). An upsert of a version artifact answers 201 when it
creates, 200 when it updates.

Faults: ``outage`` (an HTTP status answered to every request while set), ``drop``
(close connections without answering), and ``fail_after(n, status)`` (the n+1-th
request from now fails: a registration cut in the middle).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import yaml

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "model-registry" / "v0.3.4" / "model-registry.yaml"
API = "/api/model_registry/v1alpha3"


# ---------------------------------------------------------------------- the spec


class Spec:
    """The OpenAPI document, turned into JSON Schema validators and an operation table."""

    def __init__(self, path: Path = SPEC_PATH):
        self.raw = yaml.safe_load(path.read_text())
        self.schemas = self.raw["components"]["schemas"]
        self.root = {"components": {"schemas": {
            name: _to_json_schema(schema) for name, schema in self.schemas.items()
        }}}
        self.operations: list[tuple[str, re.Pattern[str], str, dict[str, Any], list]] = []
        for template, item in self.raw["paths"].items():
            shared = item.get("parameters", [])
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            for method, op in item.items():
                if method == "parameters" or not isinstance(op, dict):
                    continue
                params = [self._param(p) for p in [*shared, *op.get("parameters", [])]]
                self.operations.append((method.upper(), pattern, op["operationId"], op, params))

    def _param(self, ref_or_param: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in ref_or_param:
            return self.raw["components"]["parameters"][ref_or_param["$ref"].split("/")[-1]]
        return ref_or_param

    def match(self, method: str, path: str):
        """(operationId, path params, operation, parameters), or None for an unknown route."""
        for op_method, pattern, op_id, op, params in self.operations:
            found = pattern.match(path)
            if found and op_method == method:
                return op_id, found.groupdict(), op, params
        return None

    def _ref(self, ref: str) -> dict[str, Any]:
        return self.raw["components"]["schemas"][ref.split("/")[-1]]

    def validate(self, schema: dict[str, Any], instance: Any) -> list[str]:
        """Errors of ``instance`` against an OpenAPI schema (a ``$ref`` or inline)."""
        validator = jsonschema.Draft7Validator({**self.root, **_to_json_schema(schema)})
        return list(dict.fromkeys(
            f"{'/'.join(map(str, e.absolute_path)) or '(value)'}: {e.message}"
            for e in validator.iter_errors(instance)
        ))

    def unknown_fields(self, schema: dict[str, Any], instance: Any, where: str = "") -> list[str]:
        """Fields ``instance`` has that ``schema`` does not declare, and readOnly ones."""
        if not isinstance(instance, dict):
            if isinstance(instance, list) and isinstance(schema, dict):
                items = self._resolve(schema).get("items")
                if items:
                    return [e for i, v in enumerate(instance)
                            for e in self.unknown_fields(items, v, f"{where}[{i}]")]
            return []
        props, additional, read_only = self._properties(schema, instance)
        problems = []
        for key, value in instance.items():
            here = f"{where}.{key}" if where else key
            if key in read_only:
                problems.append(f"{here} is readOnly (output only): a request must not send it")
            if key in props:
                problems += self.unknown_fields(props[key], value, here)
            elif isinstance(additional, dict):
                problems += self.unknown_fields(additional, value, here)
            else:
                problems.append(f"{here} is not a field of this schema (the server decodes "
                                "with DisallowUnknownFields)")
        return problems

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self._ref(schema["$ref"])
        return schema

    def _properties(self, schema, instance) -> tuple[dict[str, Any], Any, set[str]]:
        schema = self._resolve(schema)
        disc = schema.get("discriminator")
        if disc:
            chosen = disc["mapping"].get(instance.get(disc["propertyName"]))
            if chosen is None:
                return {}, None, set()
            return self._properties({"$ref": chosen}, instance)
        props: dict[str, Any] = {}
        read_only: set[str] = set()
        additional = schema.get("additionalProperties")
        for key, sub in (schema.get("properties") or {}).items():
            props[key] = sub
            if self._resolve(sub).get("readOnly") is True or sub.get("readOnly") is True:
                read_only.add(key)
        for part in schema.get("allOf", []):
            more, extra, ro = self._properties(part, instance)
            props.update(more)
            read_only |= ro
            additional = additional or extra
        return props, additional, read_only


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (draft 7).

    ``oneOf`` with a ``discriminator`` becomes "the property is one of the mapping's
    keys, and the schema its value maps to applies" (what OpenAPI means by it; a plain
    ``oneOf`` would fail, since these object schemas overlap). ``format: int64`` on a
    string (ids, times, ``int_value``) must be a decimal integer.
    """
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items()
           if k not in ("discriminator", "example", "examples", "readOnly", "writeOnly")}
    disc = node.get("discriminator")
    if disc and "oneOf" in node:
        prop, mapping = disc["propertyName"], disc["mapping"]
        out.pop("oneOf")
        out["type"] = "object"
        out["required"] = sorted({*out.get("required", []), prop})
        out["properties"] = {**out.get("properties", {}), prop: {"enum": sorted(mapping)}}
        out["allOf"] = [
            *out.get("allOf", []),
            *({"if": {"properties": {prop: {"const": key}}},
               "then": {"$ref": ref}} for key, ref in sorted(mapping.items())),
        ]
    if node.get("type") == "string" and node.get("format") == "int64":
        out["pattern"] = r"^-?[0-9]+$"
    return out


# ---------------------------------------------------------------------- the server


class ApiError(Exception):
    """An answer with the spec's ``Error`` body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


_STATUS_TEXT = {400: "Bad Request", 404: "Not Found", 409: "Conflict",
                422: "Unprocessable Entity", 500: "Internal Server Error",
                503: "Service Unavailable"}

# kind -> (id sequence, parent field, plural used in messages)
_CONTEXTS = "contexts"
_KINDS = {
    "RegisteredModel": (_CONTEXTS, None),
    "ModelVersion": (_CONTEXTS, "registeredModelId"),
    "ServingEnvironment": (_CONTEXTS, None),
    "InferenceService": (_CONTEXTS, "servingEnvironmentId"),
    "Artifact": ("artifacts", None),
    "ServeModel": ("executions", None),
}
_DEFAULT_STATE = {"RegisteredModel": "LIVE", "ModelVersion": "LIVE",
                  "InferenceService": "DEPLOYED"}


@dataclass
class Exchange:
    """One request the double answered (for tests that look at the traffic)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    operation: str | None


@dataclass
class ModelRegistryDouble:
    """The server state and its faults; ``url`` once started with :func:`serve`."""

    spec: Spec = field(default_factory=Spec)
    url: str = ""
    entities: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {k: {} for k in _KINDS})
    # artifact id -> model version id it is attached to; serve id -> inference service id
    artifact_parent: dict[str, str] = field(default_factory=dict)
    serve_parent: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    outage: int | None = None
    drop: bool = False
    _fail_countdown: int | None = None
    _fail_status: int = 503
    _ids: dict[str, int] = field(default_factory=lambda: {_CONTEXTS: 0, "artifacts": 0,
                                                           "executions": 0})
    _last_ms: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------------ faults

    def fail_after(self, requests: int, status: int = 503) -> None:
        """Let ``requests`` more requests through, then fail every one with ``status``."""
        with self.lock:
            self._fail_countdown, self._fail_status = requests, status

    def heal(self) -> None:
        """End every fault."""
        with self.lock:
            self.outage, self.drop, self._fail_countdown = None, False, None

    def _fault(self) -> int | None:
        with self.lock:
            if self.outage:
                return self.outage
            if self._fail_countdown is not None:
                if self._fail_countdown <= 0:
                    return self._fail_status
                self._fail_countdown -= 1
        return None

    # ------------------------------------------------------------------ storage

    def _now(self) -> str:
        ms = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return str(ms)

    def _create(self, kind: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        sequence, _ = _KINDS[kind]
        self._ids[sequence] += 1
        now = self._now()
        entity = {**copy.deepcopy(body), **extra, "id": str(self._ids[sequence]),
                  "createTimeSinceEpoch": now, "lastUpdateTimeSinceEpoch": now}
        if kind in _DEFAULT_STATE:
            entity.setdefault("state", _DEFAULT_STATE[kind])
        if kind == "Artifact":
            entity.setdefault("state", "UNKNOWN")
        if kind == "ServeModel":
            entity.setdefault("lastKnownState", "UNKNOWN")
        entity.setdefault("customProperties", {})
        self.entities[kind][entity["id"]] = entity
        return entity

    def _get(self, kind: str, entity_id: str) -> dict[str, Any]:
        found = self.entities[kind].get(entity_id)
        if found is None:
            raise ApiError(404, f"no {kind} found for id {entity_id}")
        return found

    def _update(self, kind: str, entity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        entity = self._get(kind, entity_id)
        if kind == "Artifact" and body.get("artifactType") not in (None, entity["artifactType"]):
            raise ApiError(400, f"artifactType {body['artifactType']} does not match "
                                f"{entity['artifactType']} of artifact {entity_id}")
        entity.update(copy.deepcopy(body))
        entity["lastUpdateTimeSinceEpoch"] = self._now()
        return entity

    def _unique(self, kind: str, name: str | None, parent: tuple[str, str] | None = None,
                artifact_version: str | None = None) -> None:
        if not name:
            return
        for other in self.entities[kind].values():
            if other.get("name") != name:
                continue
            if parent and other.get(parent[0]) != parent[1]:
                continue
            if kind == "Artifact" and self.artifact_parent.get(other["id"]) != artifact_version:
                continue
            raise ApiError(409, f"{kind} with name {name!r} already exists")

    def _find(self, kind: str, query: dict[str, str], parent_field: str | None) -> dict[str, Any]:
        name, external = query.get("name"), query.get("externalId")
        parent = query.get("parentResourceId")
        if not name and not external:
            raise ApiError(400, "invalid parameters: give name or externalId")
        if name and parent_field and not parent and not external:
            raise ApiError(400, f"invalid parameters: name of a {kind} needs parentResourceId")
        for entity in self.entities[kind].values():
            if external and entity.get("externalId") != external:
                continue
            if name and entity.get("name") != name:
                continue
            if parent and parent_field and entity.get(parent_field) != parent:
                continue
            if parent and kind == "Artifact" and self.artifact_parent.get(entity["id"]) != parent:
                continue
            return entity
        raise ApiError(404, f"no {kind} found for name={name}, parentResourceId={parent}, "
                            f"externalId={external}")

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        key = {"ID": lambda e: int(e["id"]), "CREATE_TIME": lambda e: int(e["createTimeSinceEpoch"]),
               "LAST_UPDATE_TIME": lambda e: int(e["lastUpdateTimeSinceEpoch"])}[
            query.get("orderBy", "ID")]
        ordered = sorted(items, key=key, reverse=query.get("sortOrder", "ASC") == "DESC")
        size = int(query.get("pageSize") or 100)
        start = 0
        if query.get("nextPageToken"):
            start = int(base64.b64decode(query["nextPageToken"]).decode())
        page = ordered[start:start + size]
        more = start + size < len(ordered)
        token = base64.b64encode(str(start + size).encode()).decode() if more else ""
        return {"items": copy.deepcopy(page), "size": len(page), "pageSize": size,
                "nextPageToken": token}

    # ------------------------------------------------------------------ operations

    def handle(self, op: str, params: dict[str, str], query: dict[str, str], body: Any):
        """(status, body) of one operation; raises ApiError for error answers."""
        e = self.entities
        with self.lock:
            # RegisteredModel
            if op == "getRegisteredModels":
                return 200, self._page(list(e["RegisteredModel"].values()), query)
            if op == "createRegisteredModel":
                self._unique("RegisteredModel", body.get("name"))
                return 201, self._create("RegisteredModel", body)
            if op == "getRegisteredModel":
                return 200, self._get("RegisteredModel", params["registeredmodelId"])
            if op == "updateRegisteredModel":
                return 200, self._update("RegisteredModel", params["registeredmodelId"], body)
            if op == "findRegisteredModel":
                return 200, self._find("RegisteredModel", query, None)
            if op in ("getRegisteredModelVersions", "createRegisteredModelVersion"):
                model = self._get("RegisteredModel", params["registeredmodelId"])
                if op == "createRegisteredModelVersion":
                    return self.handle("createModelVersion", {}, {},
                                       {**body, "registeredModelId": model["id"]})
                items = [v for v in e["ModelVersion"].values()
                         if v["registeredModelId"] == model["id"]]
                return 200, self._page(items, query)
            # ModelVersion
            if op == "getModelVersions":
                return 200, self._page(list(e["ModelVersion"].values()), query)
            if op == "createModelVersion":
                self._get("RegisteredModel", body["registeredModelId"])
                self._unique("ModelVersion", body.get("name"),
                             ("registeredModelId", body["registeredModelId"]))
                return 201, self._create("ModelVersion", body)
            if op == "getModelVersion":
                return 200, self._get("ModelVersion", params["modelversionId"])
            if op == "updateModelVersion":
                return 200, self._update("ModelVersion", params["modelversionId"], body)
            if op == "findModelVersion":
                return 200, self._find("ModelVersion", query, "registeredModelId")
            if op == "getModelVersionArtifacts":
                version = self._get("ModelVersion", params["modelversionId"])
                items = [a for a in e["Artifact"].values()
                         if self.artifact_parent.get(a["id"]) == version["id"]
                         and a["artifactType"] == query.get("artifactType", a["artifactType"])
                         and a.get("name") == query.get("name", a.get("name"))]
                return 200, self._page(items, query)
            if op == "upsertModelVersionArtifact":
                version = self._get("ModelVersion", params["modelversionId"])
                if body.get("id"):
                    return 200, self._update("Artifact", body["id"], body)
                self._unique("Artifact", body.get("name"), artifact_version=version["id"])
                created = self._create("Artifact", body)
                self.artifact_parent[created["id"]] = version["id"]
                return 201, created
            # Artifacts (all types, and the model-artifact views)
            if op in ("getArtifacts", "getModelArtifacts"):
                wanted = "model-artifact" if op == "getModelArtifacts" else query.get("artifactType")
                items = [a for a in e["Artifact"].values()
                         if wanted is None or a["artifactType"] == wanted]
                return 200, self._page(items, query)
            if op in ("createArtifact", "createModelArtifact"):
                body = {"artifactType": "model-artifact", **body}
                self._unique("Artifact", body.get("name"), artifact_version=None)
                return 201, self._create("Artifact", body)
            if op in ("getArtifact", "getModelArtifact"):
                found = self._get("Artifact", params.get("id") or params.get("modelartifactId"))
                if op == "getModelArtifact" and found["artifactType"] != "model-artifact":
                    raise ApiError(404, f"no ModelArtifact found for id {found['id']}")
                return 200, found
            if op in ("updateArtifact", "updateModelArtifact"):
                return 200, self._update(
                    "Artifact", params.get("id") or params.get("modelartifactId"), body)
            if op in ("findArtifact", "findModelArtifact"):
                found = self._find("Artifact", query, None)
                if op == "findModelArtifact" and found["artifactType"] != "model-artifact":
                    raise ApiError(404, "no ModelArtifact found")
                return 200, found
            # ServingEnvironment
            if op == "getServingEnvironments":
                return 200, self._page(list(e["ServingEnvironment"].values()), query)
            if op == "createServingEnvironment":
                self._unique("ServingEnvironment", body.get("name"))
                return 201, self._create("ServingEnvironment", body)
            if op == "getServingEnvironment":
                return 200, self._get("ServingEnvironment", params["servingenvironmentId"])
            if op == "updateServingEnvironment":
                return 200, self._update("ServingEnvironment", params["servingenvironmentId"], body)
            if op == "findServingEnvironment":
                return 200, self._find("ServingEnvironment", query, None)
            if op == "getEnvironmentInferenceServices":
                env = self._get("ServingEnvironment", params["servingenvironmentId"])
                items = [i for i in e["InferenceService"].values()
                         if i["servingEnvironmentId"] == env["id"]]
                return 200, self._page(items, query)
            # InferenceService
            if op in ("createInferenceService", "createEnvironmentInferenceService"):
                if op == "createEnvironmentInferenceService":
                    body = {**body, "servingEnvironmentId": params["servingenvironmentId"]}
                self._get("ServingEnvironment", body["servingEnvironmentId"])
                self._get("RegisteredModel", body["registeredModelId"])
                if body.get("modelVersionId"):
                    self._get("ModelVersion", body["modelVersionId"])
                self._unique("InferenceService", body.get("name"),
                             ("servingEnvironmentId", body["servingEnvironmentId"]))
                # upstream answers 200 on the flat create, 201 under an environment (spec)
                status = 201 if op == "createEnvironmentInferenceService" else 200
                return status, self._create("InferenceService", body)
            if op == "getInferenceServices":
                return 200, self._page(list(e["InferenceService"].values()), query)
            if op == "getInferenceService":
                return 200, self._get("InferenceService", params["inferenceserviceId"])
            if op == "updateInferenceService":
                if body.get("modelVersionId"):
                    self._get("ModelVersion", body["modelVersionId"])
                return 200, self._update("InferenceService", params["inferenceserviceId"], body)
            if op == "findInferenceService":
                return 200, self._find("InferenceService", query, "servingEnvironmentId")
            if op == "getInferenceServiceModel":
                isvc = self._get("InferenceService", params["inferenceserviceId"])
                return 200, self._get("RegisteredModel", isvc["registeredModelId"])
            if op == "getInferenceServiceVersion":
                isvc = self._get("InferenceService", params["inferenceserviceId"])
                if not isvc.get("modelVersionId"):
                    raise ApiError(404, "the InferenceService names no ModelVersion")
                return 200, self._get("ModelVersion", isvc["modelVersionId"])
            if op == "getInferenceServiceServes":
                isvc = self._get("InferenceService", params["inferenceserviceId"])
                items = [s for s in e["ServeModel"].values()
                         if self.serve_parent.get(s["id"]) == isvc["id"]]
                return 200, self._page(items, query)
            if op == "createInferenceServiceServe":
                isvc = self._get("InferenceService", params["inferenceserviceId"])
                self._get("ModelVersion", body["modelVersionId"])
                created = self._create("ServeModel", body)
                self.serve_parent[created["id"]] = isvc["id"]
                return 201, created
        raise NotImplementedError(op)


def _error_body(status: int, message: str) -> dict[str, str]:
    return {"code": _STATUS_TEXT.get(status, str(status)), "message": message}


class _Handler(BaseHTTPRequestHandler):
    double: ModelRegistryDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        double = self.double
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if double.drop:
            self.close_connection = True
            self.connection.close()
            return
        fault = double._fault()
        if fault:
            self._send(fault, _error_body(fault, "injected fault"))
            return
        path = parts.path
        route = double.spec.match(method, path)
        if route is None:
            double.exchanges.append(Exchange(method, path, query, raw, 404, None))
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        op_id, params, op, declared = route
        body: Any = None
        try:
            body = json.loads(raw) if raw else None
            self._check_request(op_id, op, declared, query, body)
            status, result = double.handle(op_id, params, query, body)
        except ApiError as exc:
            status, result = exc.status, _error_body(exc.status, exc.message)
        except json.JSONDecodeError as exc:
            status, result = 400, _error_body(400, str(exc))
        except NotImplementedError:
            double.violations.append(f"{op_id}: not implemented by the double")
            status, result = 500, _error_body(500, f"{op_id} is not implemented by the double")
        self._check_response(op_id, op, status, result)
        double.exchanges.append(Exchange(method, path, query, body, status, op_id))
        self._send(status, result)

    def _check_request(self, op_id, op, declared, query, body) -> None:
        spec, problems = self.double.spec, []
        known = {p["name"]: p for p in declared if p["in"] == "query"}
        for name, value in query.items():
            if name not in known:
                problems.append(f"query parameter {name!r} is not declared for {op_id}")
            else:
                problems += [f"query {name}: {e}" for e in spec.validate(known[name]["schema"], value)]
        schema = ((op.get("requestBody") or {}).get("content") or {}).get(
            "application/json", {}).get("schema")
        if schema is not None:
            if body is None:
                problems.append("the request has no JSON body")
            else:
                problems += spec.validate(schema, body)
                problems += spec.unknown_fields(schema, body)
        elif body is not None:
            problems.append(f"{op_id} takes no body")
        if problems:
            message = f"{op_id}: " + "; ".join(problems)
            self.double.violations.append(f"request {message}")
            raise ApiError(400, message)

    def _check_response(self, op_id, op, status, result) -> None:
        response = op["responses"].get(str(status))
        if response is None:
            self.double.violations.append(f"response {op_id}: status {status} is not in the spec")
            return
        if "$ref" in response:
            response = self.double.spec.raw["components"]["responses"][response["$ref"].split("/")[-1]]
        schema = response["content"]["application/json"]["schema"]
        problems = self.double.spec.validate(schema, result)
        if problems:
            self.double.violations.append(f"response {op_id} {status}: " + "; ".join(problems))

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")


@contextmanager
def serve(double: ModelRegistryDouble | None = None) -> Iterator[ModelRegistryDouble]:
    """Run a double on 127.0.0.1 (a free port) for the ``with`` block."""
    double = double or ModelRegistryDouble()
    handler = type("Handler", (_Handler,), {"double": double})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
