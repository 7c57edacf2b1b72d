"""Mirror the store's registry into the Kubeflow Model Registry (REST API v1alpha3).

The store (``kfp_mlops.model.registry``) stays the source of truth: version numbers,
stages and their compare-and-set history live there. The Kubeflow Model Registry that
Kubeflow 1.11 installs (server v0.3.4, ``/api/model_registry/v1alpha3``) is a mirror
that every other team and tool on the cluster can read (the dashboard's Model Registry
UI, KServe's ``model-registry://`` storage initializer, the ``model-registry`` Python
client). :func:`sync_model` writes what the store says, idempotently:

- RegisteredModel ``<name>``: ``customProperties`` ``kfp_mlops_store`` (which store it
  mirrors), ``production_version`` and ``kfp_mlops_history_tip`` (the store's last
  committed stage change: equal to the store's, the mirror is current);
- ModelVersion ``<version>`` (the suite's number as text): ``author`` (who published),
  ``description`` (why), ``state`` ``ARCHIVED`` for the suite's stage ``archived`` and
  ``LIVE`` otherwise, and ``customProperties``: ``stage`` (none, staging, production,
  archived), the blessing (``blessed``, ``blessing_reason``, ``blessing_policy``),
  lineage (``dataset_version``, ``dataset_uri``, ``data_sha256``, ``kfp_run_id``,
  ``pipeline_version``), ``kfp_mlops_version``, ``sklearn_version``, ``model_sha256``,
  ``model_signature``, one ``metric.<name>`` double per metric, and ``registration``
  (``incomplete`` until its ModelArtifact is written);
- one ModelArtifact per version: ``uri`` the version folder in the store, format
  ``sklearn`` version ``1`` (what the serving runtime declares), the storage fields
  KServe needs, and the KFP run as model source.

A stage change is mirrored by re-reading the whole model from the store and writing
what differs, then checking that the store's history tip did not move meanwhile (if
it did, once more): whatever order racing writers finish in, the last write of every
entity carries the state of the newest tip (docs/registry.md, "Consistency").

The suite talks REST with :class:`ModelRegistryClient` (urllib, no extra dependency):
the official ``model-registry`` client runs an asyncio loop and patches it globally
(``nest_asyncio``), which a pipeline task or the KServe model server must not inherit.
The official client reads back what the suite wrote in the tests
(``kfp-mlops[registry]`` pins it to 0.3.4, the client of the v1alpha3 API).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.model.registry import MODELS, ModelVersion, Registry, RegistryError
from kfp_mlops.storage import Store, StoreError

log = logging.getLogger("kfp_mlops.model.kubeflow_registry")

MODEL_REGISTRY_ENV = "KFP_MLOPS_MODEL_REGISTRY"
# The service kubeflow/manifests v1.11.0 installs (applications/model-registry/upstream:
# Service model-registry-service, port 8080, applied in namespace kubeflow).
IN_CLUSTER_URL = "http://model-registry-service.kubeflow.svc.cluster.local:8080"
IN_CLUSTER_ALIAS = "kubeflow"
API_PATH = "/api/model_registry/v1alpha3"
# Where the official client (and so this one) finds a bearer token.
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
# KServe's serving side of a published version (manifests/base/inferenceservice).
SERVING_ACCOUNT = "kfp-mlops-s3"
SERVING_SECRET = "kfp-mlops-s3-credentials"
SERVING_RUNTIME = "kfp-mlops-sklearn"
MODEL_FORMAT = "sklearn"
MODEL_FORMAT_VERSION = "1"  # supportedModelFormats of manifests/base/runtime
SOURCE_KIND = "kfp"
SOURCE_CLASS = "pipelinerun"
# The store object that says a mirror write failed and how to finish it.
PENDING_FILE = "kubeflow-model-registry.json"
STORE_PROPERTY = "kfp_mlops_store"
TIP_PROPERTY = "kfp_mlops_history_tip"
_MAX_ROUNDS = 5
# ModelVersion properties only the publishing step knows; a later sync keeps them.
_SET_ONCE = ("blessing_policy", "kfp_run_uid", "pipeline_version")


class ModelRegistryError(KfpMlopsError, RuntimeError):
    """The Model Registry refused a request, or is unreachable."""


class ModelRegistryUnavailableError(ModelRegistryError):
    """The Model Registry could not be reached or answered 5xx: worth retrying later."""


class ModelRegistryNotFoundError(ModelRegistryError):
    """The Model Registry answered 404 (no such entity, or a path this server lacks)."""


class ModelRegistryConflictError(ModelRegistryError):
    """The Model Registry answered 409: an entity of that name exists already."""


def resolve_url(value: str | None = None) -> str | None:
    """The Model Registry base URL: ``value``, else ``$KFP_MLOPS_MODEL_REGISTRY``, else None.

    ``kubeflow`` stands for the in-cluster service of Kubeflow 1.11's manifests
    (:data:`IN_CLUSTER_URL`). The URL is the server's root: the API path is added here.
    """
    raw = (value if value is not None else os.environ.get(MODEL_REGISTRY_ENV, "")).strip()
    if not raw:
        return None
    if raw == IN_CLUSTER_ALIAS:
        return IN_CLUSTER_URL
    parsed = urllib.parse.urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ModelRegistryError(
            f"Model Registry URL {raw!r} is not an http(s)://host:port URL; give e.g. "
            f"{IN_CLUSTER_URL} (or '{IN_CLUSTER_ALIAS}' for that in-cluster service)"
        )
    if parsed.path.rstrip("/").startswith("/api"):
        raise ModelRegistryError(
            f"Model Registry URL {raw!r} includes the API path; give the server root, "
            f"e.g. {parsed.scheme}://{parsed.netloc} ({API_PATH} is added)"
        )
    return raw.rstrip("/")


def _bearer_token() -> str | None:
    """The token the official client would send: ``$KF_PIPELINES_SA_TOKEN_PATH``, else the pod's."""
    for path in (os.environ.get(TOKEN_PATH_ENV), SA_TOKEN_PATH):
        if path and Path(path).is_file():
            try:
                return Path(path).read_text().strip() or None
            except OSError:
                continue
    return None


class ModelRegistryClient:
    """A small client of the Model Registry REST API v1alpha3 (only what the suite uses)."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 10.0):
        """Talk to the server at ``url`` (its root, e.g. ``http://host:8080``)."""
        self.url = url.rstrip("/")
        self.token = token if token is not None else _bearer_token()
        self.timeout_s = timeout_s

    # ------------------------------------------------------------------ transport

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request to ``API_PATH + path``; the JSON answer, or a typed error."""
        url = f"{self.url}{API_PATH}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._error(method, url, exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ModelRegistryUnavailableError(
                f"the Model Registry at {self.url} is unreachable ({method} {url}: "
                f"{getattr(exc, 'reason', exc)})"
            ) from exc
        try:
            return json.loads(raw) if raw else {}
        except ValueError as exc:
            raise ModelRegistryError(
                f"{method} {url} answered something that is not JSON ({raw[:80]!r}); is "
                f"{self.url} a Model Registry server (its root, without {API_PATH})?"
            ) from exc

    def _error(self, method: str, url: str, exc: urllib.error.HTTPError) -> ModelRegistryError:
        try:
            message = json.loads(exc.read() or b"{}").get("message", "")
        except (ValueError, AttributeError):
            message = ""
        said = f"{method} {url} answered {exc.code}{': ' + message if message else ''}"
        if exc.code == 404:
            return ModelRegistryNotFoundError(said)
        if exc.code == 409:
            return ModelRegistryConflictError(said)
        if exc.code >= 500:
            return ModelRegistryUnavailableError(f"the Model Registry failed: {said}")
        if exc.code in (401, 403):
            return ModelRegistryError(
                f"the Model Registry refused the request ({said}); see docs/registry.md "
                "'Network path and RBAC' for the token and Istio policy a pipeline pod needs"
            )
        return ModelRegistryError(f"the Model Registry rejected a request: {said}")

    def find(self, kind: str, **query: str) -> dict[str, Any] | None:
        """``GET /<kind>?name=...``: the entity, or None when the server answers 404."""
        try:
            return self.request("GET", f"/{kind}", query=query)
        except ModelRegistryNotFoundError:
            return None

    def list_all(self, path: str, **query: str) -> list[dict[str, Any]]:
        """Every item of a paged list, following ``nextPageToken``."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page_query = {"pageSize": "100", "orderBy": "ID", "sortOrder": "ASC", **query}
            if token:
                page_query["nextPageToken"] = token
            page = self.request("GET", path, query=page_query)
            items += page.get("items") or []
            token = page.get("nextPageToken") or ""
            if not token or not page.get("items"):
                return items

    def find_or_create(
        self, kind: str, plural: str, body: dict[str, Any], parent: str | None = None
    ) -> dict[str, Any]:
        """The entity named ``body['name']`` (under ``parent``), created if absent.

        A 409 on create means another writer created it in between: read theirs.
        """
        query = {"name": body["name"]}
        if parent is not None:
            query["parentResourceId"] = parent
        found = self.find(kind, **query)
        if found is not None:
            return found
        try:
            return self.request("POST", f"/{plural}", body)
        except ModelRegistryConflictError:
            found = self.find(kind, **query)
            if found is None:
                raise
            return found


# ---------------------------------------------------------------------- properties


def metadata_value(value: Any) -> dict[str, Any]:
    """One ``MetadataValue`` of the API for a Python value (dicts and lists as JSON text)."""
    if isinstance(value, bool):
        return {"metadataType": "MetadataBoolValue", "bool_value": value}
    if isinstance(value, int):
        return {"metadataType": "MetadataIntValue", "int_value": str(value)}
    if isinstance(value, float):
        return {"metadataType": "MetadataDoubleValue", "double_value": value}
    if isinstance(value, str):
        return {"metadataType": "MetadataStringValue", "string_value": value}
    return {"metadataType": "MetadataStringValue", "string_value": json.dumps(value)}


def python_value(prop: dict[str, Any]) -> Any:
    """The Python value of a ``MetadataValue`` (the inverse of :func:`metadata_value`)."""
    kind = prop.get("metadataType")
    if kind == "MetadataBoolValue":
        return bool(prop["bool_value"])
    if kind == "MetadataIntValue":
        return int(prop["int_value"])
    if kind == "MetadataDoubleValue":
        return float(prop["double_value"])
    if kind == "MetadataStringValue":
        return prop["string_value"]
    return prop


def properties(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``customProperties`` for ``values``, leaving out None and empty strings."""
    return {k: metadata_value(v) for k, v in values.items() if v is not None and v != ""}


def read_properties(entity: dict[str, Any]) -> dict[str, Any]:
    """An entity's ``customProperties`` as plain Python values."""
    return {k: python_value(v) for k, v in (entity.get("customProperties") or {}).items()}


# ---------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class RunContext:
    """Where a publication came from: the KFP run and the pipeline version, if known."""

    run_id: str = ""
    pipeline_version: str = ""
    namespace: str = ""

    @classmethod
    def from_environment(cls, run_id: str = "", pipeline_version: str = "") -> RunContext:
        """The run id given, and the namespace this process runs in (store_uri's rule)."""
        from kfp_mlops.store_uri import current_namespace

        return cls(run_id=run_id, pipeline_version=pipeline_version,
                   namespace=current_namespace() or "")


def mr_state(stage: str) -> str:
    """The ModelVersion ``state`` for a suite stage: ``ARCHIVED`` only for ``archived``."""
    return "ARCHIVED" if stage == "archived" else "LIVE"


def policy_text(blessing: dict[str, Any] | None) -> str:
    """The blessing policy the verdict applied, as rules (``accuracy>=0.7~0.01``)."""
    if not blessing:
        return ""
    rules = []
    for row in blessing.get("comparisons") or []:
        op = ">=" if row.get("direction") in ("higher", "max", ">=") else "<="
        rule = f"{row['metric']}{op}{'' if row.get('threshold') is None else row['threshold']}"
        if row.get("tolerance"):
            rule += f"~{row['tolerance']}"
        rules.append(rule)
    return ",".join(rules)


def version_properties(
    version: ModelVersion, record: dict[str, Any], store: Store, run: RunContext | None,
) -> dict[str, Any]:
    """The ModelVersion's custom properties (plain values) for one store version."""
    meta = version.metadata
    blessing = record.get("blessing") or None
    values: dict[str, Any] = {
        "stage": version.stage,
        "blessed": bool(version.blessed),
        "blessing_reason": (blessing or {}).get("reason", ""),
        "blessing_policy": record.get("blessing_policy") or policy_text(blessing),
        "dataset_version": meta.dataset_version,
        "dataset_uri": store.uri_for(f"datasets/{meta.dataset_version}")
        if meta.dataset_version else None,
        "data_sha256": meta.data_sha256,
        "kfp_run_id": meta.run_id or (run.run_id if run else ""),
        "kfp_run_uid": record.get("kfp_run_uid"),
        "pipeline_version": record.get("pipeline_version")
        or (run.pipeline_version if run else ""),
        "kfp_mlops_version": meta.kfp_mlops_version,
        "sklearn_version": meta.sklearn_version,
        "python_version": meta.python_version,
        "model_sha256": meta.model_sha256,
        "model_signature": meta.model_hmac_sha256,
        "training_fingerprint": meta.training_fingerprint,
        "task": meta.task,
        "target": meta.target,
        "estimator": meta.estimator,
        "store_uri": version.uri,
        "published_at": record.get("published_at") or meta.created_at,
    }
    for metric, value in meta.metrics.items():
        values[f"metric.{metric}"] = float(value)
    return values


def storage_path(uri: str) -> str:
    """The object key of an ``s3://bucket/key`` URI (``storagePath``), else the path."""
    parsed = urllib.parse.urlsplit(uri)
    return parsed.path.lstrip("/") if parsed.scheme == "s3" else uri


def artifact_body(version: ModelVersion, run: RunContext | None) -> dict[str, Any]:
    """The ModelArtifact of a version: its folder in the store and how KServe serves it."""
    meta = version.metadata
    body: dict[str, Any] = {
        "artifactType": "model-artifact",
        "name": version.name,
        "description": f"{meta.estimator} pipeline ({meta.task} of {meta.target!r})",
        "uri": version.uri,
        "state": "LIVE",
        "modelFormatName": MODEL_FORMAT,
        "modelFormatVersion": MODEL_FORMAT_VERSION,
        "storageKey": SERVING_SECRET,
        "storagePath": storage_path(version.uri),
        "serviceAccountName": SERVING_ACCOUNT,
        "customProperties": properties({
            "model_sha256": meta.model_sha256, "model_signature": meta.model_hmac_sha256,
            "sklearn_version": meta.sklearn_version, "serving_runtime": SERVING_RUNTIME,
        }),
    }
    run_id = meta.run_id or (run.run_id if run else "")
    if run_id:
        body.update({
            "modelSourceKind": SOURCE_KIND, "modelSourceClass": SOURCE_CLASS,
            "modelSourceId": run_id, "modelSourceName": f"{version.name}/{version.version}",
        })
        if run is not None and run.namespace:
            body["modelSourceGroup"] = run.namespace
    return body


# ---------------------------------------------------------------------- sync


@dataclass
class SyncReport:
    """What :func:`sync_model` wrote: entity ids, created and updated versions."""

    name: str
    url: str
    registered_model_id: str = ""
    tip: str = ""
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    rounds: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"name": self.name, "url": self.url, "registered_model_id": self.registered_model_id,
                "history_tip": self.tip, "created": self.created, "updated": self.updated}


def sync_command(name: str, url: str, store_uri: str) -> str:
    """The command that finishes a mirror write that failed."""
    return f"kfp-mlops models sync {name} --model-registry {url} --store {store_uri}"


def sync_model(
    registry: Registry,
    name: str,
    client: ModelRegistryClient,
    *,
    run: RunContext | None = None,
    extra: dict[int, dict[str, Any]] | None = None,
) -> SyncReport:
    """Make the Model Registry show what the store holds for ``name`` (idempotent).

    Creates what is missing (the RegisteredModel, a ModelVersion and its ModelArtifact
    per store version), patches what differs (stages, properties), then records the
    store's history tip on the RegisteredModel. When the tip moved while writing (a
    stage change by another writer), it syncs again, so the last write is the newest
    state. ``extra`` adds per-version record values (``blessing_policy``,
    ``pipeline_version``) known only to the publishing step. Raises
    :class:`ModelRegistryError` (nothing in the store is changed by this function).
    """
    report = SyncReport(name=name, url=client.url)
    for attempt in range(1, _MAX_ROUNDS + 1):
        report.rounds = attempt
        snapshot = registry.snapshot(name)
        _write_snapshot(registry, client, snapshot, report, run, extra or {})
        if registry.tip(name) == snapshot.tip:
            report.tip = snapshot.tip
            return report
    raise ModelRegistryError(
        f"the stages of {name!r} kept changing while they were written to the Model Registry "
        f"({_MAX_ROUNDS} rounds); run `kfp-mlops models sync {name}` once they settle"
    )


def _write_snapshot(registry, client, snapshot, report, run, extra) -> None:
    name = report.name
    store = registry.store
    versions = snapshot.versions
    latest = versions[-1].metadata
    production = [v.version for v in versions if v.stage == "production"]
    model_body = {
        "name": name,
        "description": f"{latest.task} model of {latest.target!r}, published by kfp-mlops",
        "state": "LIVE",
        "libraryName": "scikit-learn",
        "customProperties": properties({STORE_PROPERTY: store.uri_for(f"{MODELS}/{name}")}),
    }
    model = client.find_or_create("registered_model", "registered_models", model_body)
    owner = read_properties(model).get(STORE_PROPERTY)
    ours = store.uri_for(f"{MODELS}/{name}")
    if owner != ours:
        said = (f"mirrors {owner}, not {ours}: two stores publish the same model name"
                if owner else "was not registered by kfp-mlops (it has no "
                f"{STORE_PROPERTY} property): someone else uses that name")
        raise ModelRegistryError(
            f"the Model Registry's registered model {name!r} {said}. Publish under another "
            "--model-name, or point --model-registry at another server"
        )
    model_id = str(model["id"])
    report.registered_model_id = model_id
    existing = {
        v["name"]: v for v in client.list_all(f"/registered_models/{model_id}/versions")
    }
    for version, record in zip(versions, snapshot.records, strict=True):
        record = {**record, **extra.get(version.version, {})}
        wanted_props = properties(version_properties(version, record, store, run))
        wanted = {
            "description": record.get("reason") or f"{name} version {version.version}",
            "author": record.get("actor") or "kfp-mlops",
            "state": mr_state(version.stage),
        }
        current = existing.get(str(version.version))
        if current is not None:  # known only to the publishing step: keep what it wrote
            have = current.get("customProperties") or {}
            wanted_props.update({k: have[k] for k in _SET_ONCE if k in have})
        if current is None:
            body = {
                "name": str(version.version), "registeredModelId": model_id, **wanted,
                "customProperties": {**wanted_props,
                                     "registration": metadata_value("incomplete")},
            }
            try:
                current = client.request("POST", "/model_versions", body)
                report.created.append(version.version)
            except ModelRegistryConflictError:
                current = client.find(
                    "model_version", name=str(version.version), parentResourceId=model_id)
                if current is None:
                    raise
        version_id = str(current["id"])
        if read_properties(current).get("registration") != "complete":
            _ensure_artifact(client, version_id, artifact_body(version, run))
        wanted_props["registration"] = metadata_value("complete")
        if _differs(current, wanted, wanted_props):
            client.request("PATCH", f"/model_versions/{version_id}", {
                **wanted,
                "customProperties": {**(current.get("customProperties") or {}), **wanted_props},
            })
            if version.version not in report.created:
                report.updated.append(version.version)
    model_props = {
        **(model.get("customProperties") or {}),
        **properties({STORE_PROPERTY: store.uri_for(f"{MODELS}/{name}"),
                      TIP_PROPERTY: snapshot.tip,
                      "production_version": str(production[0]) if production else "none"}),
    }
    if model.get("customProperties") != model_props:
        client.request("PATCH", f"/registered_models/{model_id}",
                       {"customProperties": model_props})


def _differs(current: dict[str, Any], wanted: dict[str, Any], props: dict[str, Any]) -> bool:
    if any(current.get(k) != v for k, v in wanted.items()):
        return True
    have = current.get("customProperties") or {}
    return any(have.get(k) != v for k, v in props.items())


def _ensure_artifact(client: ModelRegistryClient, version_id: str, body: dict[str, Any]) -> None:
    """Create the version's ModelArtifact, or bring an existing one up to date."""
    found = [
        a for a in client.list_all(f"/model_versions/{version_id}/artifacts",
                                   artifactType="model-artifact")
        if a.get("name") == body["name"]
    ]
    if not found:
        try:
            client.request("POST", f"/model_versions/{version_id}/artifacts", body)
            return
        except ModelRegistryConflictError:
            found = [
                a for a in client.list_all(f"/model_versions/{version_id}/artifacts",
                                           artifactType="model-artifact")
                if a.get("name") == body["name"]
            ]
            if not found:
                raise
    current = found[0]
    update = {k: v for k, v in body.items() if k != "name"}
    if any(current.get(k) != v for k, v in update.items()):
        client.request("PATCH", f"/model_artifacts/{current['id']}", update)


# ---------------------------------------------------------------------- hooks


def _pending_key(name: str) -> str:
    return f"{MODELS}/{name}/{PENDING_FILE}"


def mirror(
    registry: Registry,
    name: str,
    url: str | None,
    *,
    run: RunContext | None = None,
    extra: dict[int, dict[str, Any]] | None = None,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncReport | None:
    """Sync ``name`` to the Model Registry at ``url`` after a store change, never failing it.

    The store change has happened and stays: a Model Registry that is down (after
    ``attempts`` tries, backing off 1 s, 2 s, ...) or refuses the write is reported as
    a warning naming the command that finishes the job, and recorded in the store
    (``models/<name>/kubeflow-model-registry.json``) so ``kfp-mlops models list``
    says the mirror is behind. A later successful sync removes that record. Returns the
    report, or None when not configured or failed.
    """
    if not url:
        return None
    client = ModelRegistryClient(url)
    error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            report = sync_model(registry, name, client, run=run, extra=extra)
        except ModelRegistryUnavailableError as exc:
            error = exc
            if attempt < attempts:
                sleep(float(2 ** (attempt - 1)))
            continue
        except Exception as exc:  # noqa: BLE001 - the store change must stand; said below
            error = exc if isinstance(exc, (ModelRegistryError, RegistryError, StoreError)) \
                else RuntimeError(f"{type(exc).__name__}: {exc}")
            break
        clear_pending(registry.store, name)
        return report
    command = sync_command(name, url, registry.store.uri)
    log.warning(
        "%s is recorded in the store, but the Kubeflow Model Registry at %s does not show it "
        "yet (%s). Finish it with: %s", name, url, error, command,
    )
    _mark_pending(registry.store, name, url, str(error), command)
    return None


def pending(store: Store, name: str) -> dict[str, Any] | None:
    """The record of a failed mirror write of ``name``, or None."""
    try:
        return json.loads(store.get_bytes(_pending_key(name)))
    except StoreError:
        return None
    except ValueError:
        return {"error": "unreadable record", "command": f"kfp-mlops models sync {name}"}


def _mark_pending(store: Store, name: str, url: str, error: str, command: str) -> None:
    body = {"url": url, "error": error, "command": command,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        store.put_bytes(_pending_key(name), json.dumps(body, indent=2).encode())
    except StoreError as exc:  # the warning above already names the command
        log.warning("could not record the pending Model Registry sync of %s: %s", name, exc)


def clear_pending(store: Store, name: str) -> None:
    """Remove the record of a failed mirror write of ``name`` (after a successful sync)."""
    try:
        if store.exists(_pending_key(name)):
            store.delete(_pending_key(name))
    except StoreError as exc:
        log.warning("could not clear the pending Model Registry sync of %s: %s", name, exc)


# ---------------------------------------------------------------------- reading


@dataclass
class MirroredVersion:
    """What the Model Registry shows for one version (for ``kfp-mlops models list``)."""

    version: str
    id: str
    state: str
    stage: str | None
    registration: str | None
    artifact_uri: str | None = None


def read_model(client: ModelRegistryClient, name: str) -> dict[str, Any] | None:
    """The RegisteredModel ``name`` with its versions and their artifacts, or None."""
    model = client.find("registered_model", name=name)
    if model is None:
        return None
    versions = []
    for v in client.list_all(f"/registered_models/{model['id']}/versions"):
        props = read_properties(v)
        artifacts = client.list_all(f"/model_versions/{v['id']}/artifacts",
                                    artifactType="model-artifact")
        versions.append(MirroredVersion(
            version=v["name"], id=str(v["id"]), state=v.get("state", "LIVE"),
            stage=props.get("stage"), registration=props.get("registration"),
            artifact_uri=artifacts[0].get("uri") if artifacts else None,
        ))
    props = read_properties(model)
    return {"id": str(model["id"]), "state": model.get("state"),
            "history_tip": props.get(TIP_PROPERTY), "store": props.get(STORE_PROPERTY),
            "production_version": props.get("production_version"), "versions": versions}


# ---------------------------------------------------------------------- deployments


def record_deployment(
    client: ModelRegistryClient,
    name: str,
    version: int,
    *,
    namespace: str,
    inference_service: str,
    runtime: str = SERVING_RUNTIME,
    properties_: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record that ``inference_service`` in ``namespace`` serves ``name@version``.

    ServingEnvironment ``<namespace>``, InferenceService ``<inference_service>`` in it
    (``registeredModelId``, ``modelVersionId``, ``runtime``, ``desiredState DEPLOYED``),
    and a ServeModel (``lastKnownState COMPLETE``) for the version it now serves. The
    version must have been mirrored (publish does it); returns the InferenceService.
    """
    model = client.find("registered_model", name=name)
    mv = client.find("model_version", name=str(version),
                     parentResourceId=str(model["id"])) if model else None
    if model is None or mv is None:
        raise ModelRegistryNotFoundError(
            f"{name}@{version} is not in the Model Registry at {client.url}; run "
            f"`kfp-mlops models sync {name} --model-registry {client.url}` first"
        )
    env = client.find_or_create(
        "serving_environment", "serving_environments",
        {"name": namespace, "description": f"Kubernetes namespace {namespace}"},
    )
    wanted = {
        "modelVersionId": str(mv["id"]), "runtime": runtime, "desiredState": "DEPLOYED",
        "customProperties": properties({"namespace": namespace, **(properties_ or {})}),
    }
    isvc = client.find_or_create(
        "inference_service", "inference_services",
        {"name": inference_service, "registeredModelId": str(model["id"]),
         "servingEnvironmentId": str(env["id"]), **wanted},
        parent=str(env["id"]),
    )
    if any(isvc.get(k) != v for k, v in wanted.items()):
        isvc = client.request("PATCH", f"/inference_services/{isvc['id']}", wanted)
    client.request("POST", f"/inference_services/{isvc['id']}/serves", {
        "modelVersionId": str(mv["id"]), "lastKnownState": "COMPLETE",
        "name": f"{inference_service}-{version}-{int(time.time() * 1000)}",
    })
    return isvc


def model_registry_uri(name: str, version: int) -> str:
    """The ``model-registry://`` storage URI of a version (KServe's MR storage initializer).

    Form ``model-registry://<registered model>/<version name>``; the initializer finds
    the server from its ``MODEL_REGISTRY_BASE_URL`` (the ClusterStorageContainer in
    docs/registry.md) and downloads the version's ModelArtifact ``uri``.
    """
    return f"model-registry://{name}/{version}"


# ---------------------------------------------------------------------- hooks of the steps


def _hook_url(model_registry: str | None, name: str) -> str | None:
    """The URL a step's hook uses; a malformed one is a warning, not a failed step."""
    try:
        return resolve_url(model_registry or None)
    except ModelRegistryError as exc:
        log.warning("%s: not mirrored into the Kubeflow Model Registry: %s", name, exc)
        return None


def after_publish(
    registry: Registry,
    published: ModelVersion,
    model_registry: str | None,
    *,
    run_id: str = "",
    run_uid: str = "",
    blessing_policy: str = "",
    pipeline_version: str = "",
) -> SyncReport | None:
    """The publish step's hook: mirror the new version when a Model Registry is configured.

    ``model_registry`` is the step's setting (``--model-registry``, the pipeline
    parameter); empty falls back to ``$KFP_MLOPS_MODEL_REGISTRY``. Never raises for a
    Model Registry problem: see :func:`mirror`.
    """
    url = _hook_url(model_registry, published.name)
    extra = {published.version: {"blessing_policy": blessing_policy, "kfp_run_uid": run_uid,
                                 "pipeline_version": pipeline_version}}
    return mirror(registry, published.name, url,
                  run=RunContext.from_environment(run_id, pipeline_version), extra=extra)


def after_stage_change(
    registry: Registry, name: str, model_registry: str | None
) -> SyncReport | None:
    """The hook of promote, rollback and archive: mirror the stages (see :func:`mirror`)."""
    return mirror(registry, name, _hook_url(model_registry, name))


def after_deploy(
    registry: Registry,
    name: str,
    version: int,
    model_registry: str | None,
    *,
    namespace: str,
    inference_service: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The deploy step's hook: mirror the stages, then record the InferenceService.

    A failure is a warning naming the command to repeat (the rollout itself stands).
    """
    url = _hook_url(model_registry, name)
    if not url or mirror(registry, name, url) is None:
        return None
    try:
        return record_deployment(
            ModelRegistryClient(url), name, version, namespace=namespace,
            inference_service=inference_service, properties_=details,
        )
    except Exception as exc:  # noqa: BLE001 - the rollout stands; said below
        log.warning(
            "%s@%s serves from InferenceService %s/%s, but the Kubeflow Model Registry at %s "
            "does not record it (%s); it is recorded at the next deploy of %s",
            name, version, namespace, inference_service, url, exc, name,
        )
        return None
