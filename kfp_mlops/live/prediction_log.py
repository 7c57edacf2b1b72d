"""KServe's inference logger events turned into exactly-once prediction log rows.

KServe's agent (``pkg/logger`` in kserve/kserve) sends, for every inference request, two
CloudEvents 1.0 in HTTP *binary* mode to the logger URL: ``ce-type``
``org.kubeflow.serving.inference.request`` with the request body, and, when the model
answered 200, ``org.kubeflow.serving.inference.response`` with the response body. Both
carry the *same* ``ce-id`` (the request's ``Ce-Id`` header, else a fresh UUID), so an
event is identified by (id, type) and the pair is matched by id. ``Content-Type`` is the
request's own, for both. ``ce-source`` is the pod name, ``ce-time`` the moment the
request arrived (or the response was read), and the extension attributes
``inferenceservicename``, ``namespace``, ``component``, ``endpoint`` (``default`` or
``canary``), ``metadata`` (JSON of the headers listed in ``logger.metadataHeaders``) and
``annotations`` (JSON of the annotations listed in ``logger.metadataAnnotations``) say
where it came from. The suite reads the model version from the
:data:`VERSION_ANNOTATION` annotation that its InferenceServices carry.

:class:`PredictionLog` buffers matched pairs, writes them as Parquet in bounded
micro-batches (by rows or age), and turns at-least-once delivery into exactly-once rows:
an event already buffered, or a request whose rows are already in the store, is
dropped, and each request is claimed once in the store before its rows are written, so
two sinks (replicas) given the same event write it once. Every event is checked before
it is taken (:func:`parse_cloudevent`, :func:`check_event`: size, encoding, JSON depth,
attributes); rows are written with the model's input types, and a request its contract
refuses is kept as a dead letter, never as rows (:mod:`kfp_mlops.live.logged`). With a
spool folder every accepted event is appended to a local segment file
before :meth:`PredictionLog.accept` returns (so the sink acknowledges it only once a
killed process would find it again), and segments are deleted only after the rows they
hold are in the store; a restarted log replays them. Pure logic plus the store and the
spool files: no HTTP here (:mod:`kfp_mlops.live.log_sink` serves it).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.log_columns import (
    ENDPOINT,
    LOGGED_AT,
    MODEL_VERSION,
    PREDICTION,
    REQUEST_ID,
    ROW,
    ROW_ID,
)
from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.live.logged import (
    CLAIMS_PREFIX,
    VERSION_ANNOTATION,
    LogContract,
    NonconformingRow,
    check_name,
    dead_letter_prefix,
    partition_prefix,
    typed_columns,
    typed_predictions,
)
from kfp_mlops.storage import Store, StoreError

log = logging.getLogger(__name__)

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
EVENT_TYPES = (REQUEST_TYPE, RESPONSE_TYPE)
UNVERSIONED = "unversioned"
# Python's cost of one held event beyond its body (the event, its attributes, the
# buffer's entry): counted in the byte budget, so a flood of tiny events is bounded too.
EVENT_OVERHEAD = 1536
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"


class CloudEventError(KfpMlopsError, ValueError):
    """An HTTP request that is not one of KServe's inference logger CloudEvents."""


@dataclass(frozen=True)
class InferenceEvent:
    """One logger CloudEvent: a request or a response body and where it came from."""

    id: str
    type: str
    source: str
    time: datetime
    model: str  # the InferenceService name (= the registry model name)
    data: bytes
    content_type: str = "application/json"
    namespace: str = ""
    component: str = ""
    endpoint: str = ""
    version: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the event: KServe gives request and response the same id."""
        return (self.id, self.type)

    @property
    def cost(self) -> int:
        """Bytes it holds in memory: its body and what Python keeps around it."""
        return len(self.data) + EVENT_OVERHEAD

    @property
    def is_request(self) -> bool:
        """Whether it carries the request body."""
        return self.type == REQUEST_TYPE

    def to_json(self) -> str:
        """One spool line."""
        return json.dumps({
            "id": self.id, "type": self.type, "source": self.source,
            "time": self.time.isoformat(), "model": self.model,
            "data": base64.b64encode(self.data).decode(), "content_type": self.content_type,
            "namespace": self.namespace, "component": self.component,
            "endpoint": self.endpoint, "version": self.version,
        })

    @classmethod
    def from_json(cls, line: str) -> InferenceEvent:
        """Rebuild from :meth:`to_json`."""
        raw = json.loads(line)
        raw["time"] = datetime.fromisoformat(raw["time"])
        raw["data"] = base64.b64decode(raw["data"])
        return cls(**raw)


def parse_ce_time(text: str) -> datetime:
    """An RFC 3339 time as Go writes it (nanoseconds, ``Z``) as an aware UTC datetime."""
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = value.partition(".")
    if dot:  # Python takes at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CloudEventError(f"ce-time {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _version_of(annotations: str | None, version: str | None) -> str | None:
    if version:
        return str(version)
    if not annotations:
        return None
    try:
        found = json.loads(annotations).get(VERSION_ANNOTATION)
    except (ValueError, AttributeError):
        raise CloudEventError(
            f"the 'annotations' extension {annotations[:80]!r} is not a JSON object; "
            "KServe's agent sends the logger's metadataAnnotations as one"
        ) from None
    return str(found) if found else None


# What an event may be. KServe's agent sends bodies the model server took (its own
# limit is far lower than MAX_EVENT_BYTES) and ids that are UUIDs or a client's Ce-Id.
MAX_EVENT_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32  # JSON nesting: a V2 body needs 4, a V1 body of records 3
MAX_ID_CHARS = 256
CLAIM_CONCURRENCY = 8  # claims (conditional PUTs) in flight at once during a flush
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
FUTURE_SLACK = timedelta(days=1)  # clocks drift; a year-9999 time is not drift
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(data: bytes) -> int:
    """How deep ``data``'s brackets nest, outside strings, without parsing it.

    Linear and iterative (numpy over the bytes), so a body nested a million deep costs
    what its size costs, and never reaches :func:`json.loads`, which would raise
    ``RecursionError`` (or worse, in code that walks the result).
    """
    stripped = _STRING.sub(b'""', data)
    arr = np.frombuffer(stripped, dtype=np.uint8)
    steps = ((arr == 91) | (arr == 123)).astype(np.int32) - ((arr == 93) | (arr == 125))
    return int(np.cumsum(steps).max(initial=0)) if len(steps) else 0


def check_body(data: bytes, what: str) -> Any:
    """``data`` parsed as a JSON value within :data:`MAX_DEPTH`, or a CloudEventError."""
    if len(data) > MAX_EVENT_BYTES:
        raise CloudEventError(f"the {what} body has {len(data)} bytes; at most "
                              f"{MAX_EVENT_BYTES} are taken")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CloudEventError(f"the {what} body is not UTF-8 (byte {exc.start}); KServe's "
                              "JSON bodies always are") from None
    # Fewer opening brackets than the limit cannot nest past it (the common, small body).
    few = data.count(b"[") + data.count(b"{") <= MAX_DEPTH
    depth = 0 if few else json_depth(data)
    if depth > MAX_DEPTH:
        raise CloudEventError(f"the {what} body nests {depth} deep; at most {MAX_DEPTH} "
                              "levels are taken (a V1 or V2 body needs 4)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise CloudEventError(f"the {what} body is not JSON; only JSON V1/V2 bodies are "
                              "logged") from None


def check_event(event: InferenceEvent, now: datetime | None = None) -> InferenceEvent:
    """``event`` if every attribute and its body are what an inference logger sends.

    The same checks for an event off the wire and one replayed from the spool.
    """
    if not event.id or len(event.id) > MAX_ID_CHARS or not event.id.isprintable():
        raise CloudEventError(f"CloudEvent id {event.id[:80]!r} is empty, longer than "
                              f"{MAX_ID_CHARS} characters or not printable")
    if event.type not in EVENT_TYPES:
        raise CloudEventError(
            f"CloudEvent type {event.type!r} is not an inference log event; this sink "
            f"takes {REQUEST_TYPE} and {RESPONSE_TYPE}")
    try:
        check_name(event.model, "inferenceservicename")
        if event.version:
            check_name(event.version, "model version")
    except ValueError as exc:
        raise CloudEventError(str(exc)) from None
    latest = (now or datetime.now(timezone.utc)) + FUTURE_SLACK
    if not EARLIEST <= event.time <= latest:
        raise CloudEventError(
            f"ce-time {event.time.isoformat()} is before {EARLIEST.year} or more than a day "
            "ahead; KServe's agent stamps the time the request arrived")
    body = check_body(event.data, "request" if event.is_request else "response")
    if not isinstance(body, dict):
        raise CloudEventError(f"the {'request' if event.is_request else 'response'} body is "
                              f"a JSON {type(body).__name__}, not an object")
    return event


def _sdk_event(headers: Mapping[str, str], body: bytes, structured: bool) -> Any:
    """The CloudEvent the CNCF SDK reads off the request (binary or structured mode)."""
    from cloudevents.http import from_http

    # Binary mode: the body stays bytes (checked below). Structured mode: the SDK reads
    # the envelope and hands over its "data" member re-serialized: parse it back to the
    # value (the depth check ran first, so nothing recurses too deep).
    unmarshal = json.loads if structured else (lambda raw: raw)
    try:
        return from_http(dict(headers), body, data_unmarshaller=unmarshal)
    except Exception as exc:  # noqa: BLE001 - the SDK's errors are not one family
        raise CloudEventError(f"not a valid CloudEvent: {type(exc).__name__}: "
                              f"{str(exc)[:200]}") from None


def parse_cloudevent(headers: Mapping[str, str], body: bytes) -> InferenceEvent:
    """The event in an HTTP request, binary (``ce-*`` headers) or structured mode.

    The envelope is read by the CNCF ``cloudevents`` SDK; the attributes KServe's agent
    sends and the body are then checked (:func:`check_event`). Anything else is a
    :class:`CloudEventError` (the sink answers 400).
    """
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    content_type = lower.get("content-type", "")
    structured = content_type.split(";")[0].strip().lower() == STRUCTURED_CONTENT_TYPE
    if "ce-specversion" not in lower and not structured:
        raise CloudEventError(
            "not a CloudEvent: no ce-specversion header (binary mode) and the content type "
            f"is {content_type!r}, not {STRUCTURED_CONTENT_TYPE} (structured mode); point "
            "the InferenceService's logger.url at this sink"
        )
    if structured:
        check_body(body, "structured CloudEvent")  # size, encoding, depth before the SDK
    sdk = _sdk_event(lower, body, structured)
    attrs = {str(k).lower(): v for k, v in sdk.get_attributes().items()}
    for required in ("id", "type", "source", "specversion"):
        if not attrs.get(required):
            raise CloudEventError(f"the CloudEvent has no '{required}' attribute; KServe's "
                                  "inference logger always sends one")
    if str(attrs["specversion"]) != "1.0":
        raise CloudEventError(f"CloudEvents specversion {attrs['specversion']!r} is not 1.0")
    if attrs["type"] not in EVENT_TYPES:
        raise CloudEventError(
            f"CloudEvent type {attrs['type']!r} is not an inference log event; this sink "
            f"takes {REQUEST_TYPE} and {RESPONSE_TYPE}"
        )
    model = str(attrs.get("inferenceservicename") or "")
    if not model:
        raise CloudEventError("the CloudEvent has no 'inferenceservicename' extension; "
                              "KServe's agent names the InferenceService in it")
    data = sdk.get_data()
    if structured:
        data = _structured_data(data, attrs)
    elif data is None:
        data = b""
    if not isinstance(data, (bytes, bytearray)):
        raise CloudEventError("the CloudEvent's data is not a body of bytes")
    when = parse_ce_time(str(attrs["time"])) if attrs.get("time") else datetime.now(timezone.utc)
    annotations = attrs.get("annotations")
    event = InferenceEvent(
        id=str(attrs["id"]), type=str(attrs["type"]), source=str(attrs["source"]), time=when,
        model=model, data=bytes(data),
        content_type=str(attrs.get("datacontenttype") or content_type or "application/json")
        if structured else (content_type or "application/json"),
        namespace=str(attrs.get("namespace", "")), component=str(attrs.get("component", "")),
        endpoint=str(attrs.get("endpoint", "")),
        version=_version_of(str(annotations) if annotations is not None else None,
                            attrs.get("modelversion")),
    )
    return check_event(event)


def _structured_data(data: Any, attrs: Mapping[str, Any]) -> bytes:
    """A structured event's ``data`` (JSON value) or ``data_base64`` as body bytes."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)  # the SDK decoded data_base64
    if isinstance(data, str):
        return data.encode()
    if data is None:
        return b""
    return json.dumps(data).encode()


def binary_headers(event: InferenceEvent, recorded: datetime | None = None) -> dict[str, str]:
    """The HTTP headers KServe's agent sends for ``event`` (binary mode).

    What the agent's ``sendHttpCloudEvent`` sets: id, type, time, source, the
    ``recordedtime``, ``inferenceservicename``, ``namespace``, ``component``, ``endpoint``,
    ``metadata`` extensions, ``annotations`` when any, and the request's content type.
    """
    def rfc3339(moment: datetime) -> str:
        return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")

    headers = {
        "ce-specversion": "1.0", "ce-id": event.id, "ce-type": event.type,
        "ce-source": event.source, "ce-time": rfc3339(event.time),
        "ce-recordedtime": rfc3339(recorded or datetime.now(timezone.utc)),
        "ce-inferenceservicename": event.model, "ce-namespace": event.namespace,
        "ce-component": event.component, "ce-endpoint": event.endpoint,
        "ce-metadata": "{}", "content-type": event.content_type,
    }
    if event.version:
        headers["ce-annotations"] = json.dumps({VERSION_ANNOTATION: event.version})
    return headers


# ---------------------------------------------------------------- request/response bodies


def _json(data: bytes, what: str) -> Any:
    return check_body(data, what)


def _flat(values: Any) -> list[Any]:
    if not isinstance(values, list):
        raise CloudEventError(f"a V2 tensor's data is a {type(values).__name__}, not a list")
    if values and isinstance(values[0], list):
        return [v for sub in values for v in (sub if isinstance(sub, list) else [sub])]
    return list(values)


def request_rows(data: bytes, features: list[str]) -> list[dict[str, Any]]:
    """The input rows of a V1 (rows or records) or V2 (columns or one tensor) body.

    Records keep every field the client sent (a key column for the labels join among
    them); rows in feature order and V2 tensors are named by ``features``. A body of
    another shape is a :class:`CloudEventError`.
    """
    body = _json(data, "request")
    if not isinstance(body, dict):
        raise CloudEventError("the request body is not a JSON object")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise CloudEventError("the V1 request's 'instances' is not a non-empty list")
        if all(isinstance(row, dict) for row in instances):
            return [dict(row) for row in instances]
        if not all(isinstance(row, list) for row in instances):
            raise CloudEventError("the V1 request's 'instances' mixes rows and records, or "
                                  "holds values that are neither")
        if any(len(row) != len(features) for row in instances):
            raise CloudEventError(f"a V1 row has not the model's {len(features)} values")
        return [dict(zip(features, row, strict=True)) for row in instances]
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(
            isinstance(item, dict) for item in inputs):
        raise CloudEventError("the request body has neither V1 'instances' nor V2 'inputs'")
    names = [str(item.get("name")) for item in inputs]
    if len(inputs) == 1 and names[0] not in features and len(features) > 1:
        values = _flat(inputs[0].get("data") or [])
        width = len(features)
        if len(values) % width:
            raise CloudEventError(f"a V2 tensor of {len(values)} values is not rows of the "
                                  f"model's {width} features")
        return [dict(zip(features, values[i:i + width], strict=True))
                for i in range(0, len(values), width)]
    if len(set(names)) != len(names):
        raise CloudEventError("the V2 request names an input twice")
    columns = {name: _flat(item.get("data") or []) for name, item in zip(names, inputs,
                                                                          strict=True)}
    rows = max(len(v) for v in columns.values())
    if rows == 0 or any(len(v) != rows for v in columns.values()):
        raise CloudEventError("the V2 request's inputs are empty or of unequal lengths")
    return [{name: values[i] for name, values in columns.items()} for i in range(rows)]


def response_predictions(data: bytes) -> list[Any]:
    """The predictions of a V1 (``predictions``) or V2 (output ``predictions``) body."""
    body = _json(data, "response")
    if isinstance(body, dict) and isinstance(body.get("predictions"), list):
        return list(body["predictions"])
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if isinstance(outputs, list) and outputs and all(isinstance(o, dict) for o in outputs):
        chosen = next((o for o in outputs if o.get("name") == "predictions"), outputs[0])
        return _flat(chosen.get("data") or [])
    raise CloudEventError("the response body has neither V1 'predictions' nor V2 'outputs'")


# ---------------------------------------------------------------- the log


@dataclass
class _Partition:
    written: set[str] = field(default_factory=set)  # request ids already in the store


@dataclass
class LogStats:
    """What a log accepted, dropped and wrote (also the sink's /metrics)."""

    accepted: int = 0
    duplicates: int = 0
    rows_written: int = 0
    files_written: int = 0
    unanswered: int = 0  # requests written without a response (none came in time)
    orphan_responses: int = 0  # responses dropped: their request never came
    dead_letters: int = 0  # requests kept under the dead-letter prefix, not as rows
    claimed_elsewhere: int = 0  # requests another replica wrote (or is writing)
    refused: dict[str, int] = field(default_factory=dict)  # 4xx answers, by reason
    flush_failures: int = 0
    replay_refused: int = 0  # spooled events that no longer pass the checks


@dataclass(frozen=True)
class DeadLetter:
    """A request (and its response, if any) kept aside: why, and what was sent."""

    request: InferenceEvent
    response: InferenceEvent | None
    reason: str


class SpoolFullError(KfpMlopsError, OSError):
    """The spool has no room for the event (its size cap or the disk): answer 503."""


class BudgetExceeded(KfpMlopsError):
    """Buffered events would pass the byte budget: answer 503 with Retry-After."""


Contract = LogContract | list[str] | list[Any]
FeaturesFor = Callable[[str, str], Contract]
VersionFor = Callable[[str], str | None]


def as_contract(found: Contract | None) -> LogContract | list[str] | None:
    """A :class:`LogContract`, or feature names (untyped, the in-process logger's)."""
    if found is None or isinstance(found, LogContract):
        return found
    items = list(found)
    if items and not isinstance(items[0], str):
        return LogContract(tuple(items))  # Feature records: typed, predictions as sent
    return [str(n) for n in items]


class PredictionLog:
    """Matched request/response pairs appended to the store in bounded micro-batches.

    ``features_for(model, version)`` gives the model's contract (a :class:`LogContract`,
    or bare feature names for untyped rows; ``None`` when the version is unknown: its
    events are dead letters); ``version_for(model)`` is asked when an event names no
    version (e.g. the registry's production version). ``max_rows``/``max_age_s`` bound a
    batch: :meth:`due` says when to :meth:`flush`. ``pending_s``: how long a request
    waits for its response before it is written without one (``logger.mode: request``,
    or a non-200 answer, which KServe does not log). ``spool_dir``: see the module text;
    ``spool_bytes`` caps it (an event that does not fit is refused, never half kept).
    ``budget_bytes`` caps the bodies held in memory (:meth:`reserve`). ``replica``
    names this writer in the per-request claims that keep two sinks from writing one
    request twice (:data:`~kfp_mlops.live.logged.CLAIMS_PREFIX`); it must stay the same
    across restarts of one spool (a StatefulSet pod name does).
    Thread-safe: the HTTP handler accepts while a flusher thread flushes.
    """

    def __init__(
        self,
        store: Store,
        features_for: FeaturesFor,
        *,
        version_for: VersionFor | None = None,
        max_rows: int = 1000,
        max_age_s: float = 5.0,
        pending_s: float = 300.0,
        spool_dir: str | Path | None = None,
        spool_bytes: int | None = None,
        fsync: bool = False,
        budget_bytes: int = 256 * 1024 * 1024,
        batch_bytes: int = 32 * 1024 * 1024,
        replica: str = "local",
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_rows < 1 or max_age_s <= 0:
            raise ValueError(f"max_rows ({max_rows}) and max_age_s ({max_age_s}) must be "
                             "positive: they bound a micro-batch")
        self.store = store
        self.features_for = features_for
        self.version_for = version_for
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.pending_s = pending_s
        self.fsync = fsync
        self.budget_bytes = budget_bytes
        self.batch_bytes = batch_bytes
        self.spool_cap = spool_bytes
        self.replica = replica
        self.clock = clock
        self.stats = LogStats()
        self.failing_since: float | None = None  # first failed flush since the last success
        self.last_error: str = ""
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._events: dict[tuple[str, str], tuple[InferenceEvent, float]] = {}
        # Taken by a flush and not yet in the store: still duplicates if redelivered.
        self._inflight: set[tuple[str, str]] = set()
        self._partitions: dict[str, _Partition] = {}
        self._first_at: float | None = None
        self._store_quiet_until = 0.0
        self._held_bytes = 0  # bodies (and overhead) of buffered and in-flight events
        self._reserved = 0  # bodies being received (reserve/release)
        self._spool = Path(spool_dir) if spool_dir else None
        self._segment: Any = None
        self._segment_no = 0
        self._spool_size = 0
        if self._spool is not None:
            self._spool.mkdir(parents=True, exist_ok=True)
            self._recover()

    # ------------------------------------------------------------ memory

    def reserve(self, size: int) -> None:
        """Hold ``size`` bytes of the budget for a body being received, or refuse."""
        with self._lock:
            if self._held_bytes + self._reserved + size > self.budget_bytes:
                raise BudgetExceeded(
                    f"{self._held_bytes + self._reserved} bytes of events are held and the "
                    f"budget is {self.budget_bytes}; retry after the next flush")
            self._reserved += size

    def release(self, size: int) -> None:
        """Give back a reservation (the body is parsed, or refused)."""
        with self._lock:
            self._reserved = max(0, self._reserved - size)

    def held_bytes(self) -> int:
        """Bytes of event bodies held in memory now (buffered or being written)."""
        with self._lock:
            return self._held_bytes + self._reserved

    # ------------------------------------------------------------ accepting

    def accept(self, event: InferenceEvent) -> bool:
        """Take one event; False when it is a duplicate (already buffered or stored).

        With a spool, the event is in the segment file when this returns True.
        """
        with self._lock:
            if event.key in self._events or event.key in self._inflight or \
                    self._stored_at_accept(event):
                self.stats.duplicates += 1
                return False
            if self._spool is not None:
                # The other half of a buffered pair is taken past the cap: refusing it would
                # keep its half waiting in a full spool, which only a flush of pairs drains.
                other = (event.id, RESPONSE_TYPE if event.is_request else REQUEST_TYPE)
                self._append(event, capped=other not in self._events)
            self._events[event.key] = (event, self.clock())
            self._held_bytes += event.cost
            if self._first_at is None:
                self._first_at = self.clock()
            self.stats.accepted += 1
            return True

    def refused(self, reason: str) -> None:
        """Count a request answered 4xx (the sink's /metrics, by reason)."""
        with self._lock:
            self.stats.refused[reason] = self.stats.refused.get(reason, 0) + 1

    def _version(self, event: InferenceEvent) -> str:
        version = event.version or (self.version_for(event.model) if self.version_for else None)
        try:
            return check_name(str(version), "model version") if version else UNVERSIONED
        except ValueError:
            return UNVERSIONED

    def _day(self, event: InferenceEvent) -> date:
        return event.time.astimezone(timezone.utc).date()

    def _stored(self, event: InferenceEvent) -> bool:
        # A response can be timed past midnight after its request: look at both days.
        version = self._version(event)
        days = {self._day(event), self._day(event) - timedelta(days=1)}
        return any(event.id in self._partition(event.model, version, d).written for d in days)

    def _partition(self, model: str, version: str, day: date) -> _Partition:
        prefix = partition_prefix(model, version, day)
        found = self._partitions.get(prefix)
        if found is None:
            found = _Partition(self._written_ids(prefix))
            self._partitions[prefix] = found
        return found

    def _written_ids(self, prefix: str) -> set[str]:
        """The request ids already in a partition's files (read once per partition)."""
        ids: set[str] = set()
        for key in self.store.list(prefix):
            name = key.rsplit("/", 1)[-1]
            if not name.endswith(".parquet") or name.startswith("."):
                continue
            with tempfile.TemporaryDirectory(prefix="kfp-mlops-log-") as tmp:
                path = Path(tmp) / "part.parquet"
                self.store.download_file(key, path)
                ids.update(pq.read_table(path, columns=[REQUEST_ID]).column(0).to_pylist())
        return ids

    # ------------------------------------------------------------ flushing

    def buffered(self) -> int:
        """Events held (matched or waiting for their pair)."""
        with self._lock:
            return len(self._events)

    def due(self) -> bool:
        """Whether a micro-batch is full or old enough to flush."""
        with self._lock:
            if self._first_at is None:
                return False
            return (len(self._events) >= 2 * self.max_rows
                    or self._held_bytes >= self.batch_bytes
                    or self.clock() - self._first_at >= self.max_age_s)

    def unhealthy_for(self) -> float:
        """Seconds flushing has been failing (0 while the last flush succeeded)."""
        with self._lock:
            return 0.0 if self.failing_since is None else self.clock() - self.failing_since

    def flush(self, everything: bool = False) -> list[str]:
        """Write the matched pairs (and requests that waited too long) to the store.

        ``everything``: also requests still waiting for a response (at shutdown), and
        every batch until none is left. Returns the keys written. Rows reach the store
        before the spool forgets them. A pair that cannot be made into rows is a dead
        letter; only the store failing fails a flush (its events are held again).
        """
        written: list[str] = []
        while True:
            keys, more = self._flush_once(everything)
            written += keys
            if not more:
                return written

    def _flush_once(self, everything: bool) -> tuple[list[str], bool]:
        with self._flush_lock:
            with self._lock:
                now = self.clock()
                requests = {e.id: (e, t) for (_, kind), (e, t) in self._events.items()
                            if kind == REQUEST_TYPE}
                responses = {e.id: (e, t) for (_, kind), (e, t) in self._events.items()
                             if kind == RESPONSE_TYPE}
                taken: list[tuple[InferenceEvent, InferenceEvent | None]] = []
                size = 0
                more = False
                for rid, (request, at) in requests.items():
                    response = responses.get(rid)
                    if response is None and not (everything or now - at >= self.pending_s):
                        continue
                    pair_size = request.cost + (response[0].cost if response else 0)
                    if taken and (size + pair_size > self.batch_bytes
                                  or len(taken) >= self.max_rows):
                        more = True  # the next batch: a flush holds at most batch_bytes
                        break
                    taken.append((request, response[0] if response else None))
                    size += pair_size
                orphans = [e for rid, (e, at) in responses.items() if rid not in requests
                           and (everything or now - at >= self.pending_s)]
                done = {r.key for r, _ in taken} | {p.key for _, p in taken if p} | {
                    o.key for o in orphans}
                if not done:
                    # Only requests still waiting for their response: look again in
                    # max_age_s, not at every tick of the flusher.
                    if self._events:
                        self._first_at = now
                    return [], False
                keep = {k: v for k, v in self._events.items() if k not in done}
                old_segments = self._rotate(keep.values()) if self._spool is not None else []
                self._events = keep
                self._inflight = done
                self._first_at = min((t for _, t in keep.values()), default=None)
            try:
                written = self._write(taken)
            except BaseException as exc:
                self._put_back(taken, orphans)
                with self._lock:
                    self.stats.flush_failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    if self.failing_since is None:
                        self.failing_since = self.clock()
                raise
            finally:
                with self._lock:
                    self._inflight = set()
            with self._lock:
                self.failing_since = None
                self.stats.orphan_responses += len(orphans)
                self._held_bytes -= sum(e.cost for e in orphans)
            for segment in old_segments:
                segment.unlink(missing_ok=True)
            if old_segments:
                with self._lock:
                    self._spool_size = self._spool_usage()
            if orphans:
                log.warning("dropped %d responses whose request never came (ids %s)",
                            len(orphans), ", ".join(o.id[:40] for o in orphans[:5]))
            return written, more

    def _put_back(self, taken: list[tuple[InferenceEvent, InferenceEvent | None]],
                  orphans: list[InferenceEvent]) -> None:
        """After a failed write: hold again (and spool again) what did not reach the store."""
        with self._lock:
            events = [e for pair in taken for e in pair if e is not None] + orphans
            for event in events:
                self._held_bytes -= event.cost
                if event.key in self._events or self._stored_quietly(event):
                    continue  # its partition was written before the failure
                if self._spool is not None:
                    try:
                        self._append(event, sync=False, capped=False)
                    except OSError as exc:  # the old segments still hold it: not lost
                        log.warning("could not spool event %s again (%s); the previous "
                                    "segment keeps it", event.id[:40], exc)
                self._events[event.key] = (event, self.clock())
                self._held_bytes += event.cost
            if self._events and self._first_at is None:
                self._first_at = self.clock()
            try:
                self._sync()
            except OSError as exc:
                log.warning("could not fsync the spool (%s); the previous segment keeps "
                            "the events", exc)

    def _sync(self) -> None:
        """Sync the open segment to the disk (with ``fsync``): it then survives the node."""
        if self.fsync and self._segment is not None:
            self._segment.flush()
            os.fsync(self._segment.fileno())

    def _stored_at_accept(self, event: InferenceEvent) -> bool:
        """Whether the event's rows are stored, as far as can be told without waiting.

        While the store fails, nothing is looked up there for a few seconds: an event is
        then taken (the claims at flush time still keep it from being written twice), so
        an outage never slows or refuses what the spool can hold.
        """
        try:
            if self.clock() < self._store_quiet_until:
                prefixes = {partition_prefix(event.model, self._version(event), d)
                            for d in (self._day(event), self._day(event) - timedelta(days=1))}
                return any(event.id in self._partitions[p].written for p in prefixes
                           if p in self._partitions)
            return self._stored(event)
        except Exception as exc:  # noqa: BLE001 - the store or the registry is failing
            self._store_quiet_until = self.clock() + 5.0
            log.warning("could not look up stored rows (%s); taking events without it", exc)
            return False

    def _stored_quietly(self, event: InferenceEvent) -> bool:
        try:
            return self._stored(event)
        except Exception:  # noqa: BLE001 - the store is failing: hold it again
            return False

    def _contract(self, model: str, version: str) -> LogContract | list[str] | None:
        return as_contract(self.features_for(model, version))

    def _pair(self, request: InferenceEvent, response: InferenceEvent | None,
              version: str) -> pa.Table:
        """One request's rows as a typed table; CloudEventError/DataError: a dead letter."""
        contract = self._contract(request.model, version)
        if contract is None:
            raise NonconformingRow(
                f"{request.model}@{version} is not in the registry, so its input contract "
                "is unknown; publish the version (or set the InferenceService's "
                f"{VERSION_ANNOTATION} annotation) to log its rows")
        names = list(contract.names) if isinstance(contract, LogContract) else contract
        rows = request_rows(request.data, names)
        predictions: list[Any] = [None] * len(rows)
        if response is not None:
            found = response_predictions(response.data)
            if len(found) == len(rows):
                predictions = found
            else:
                raise NonconformingRow(f"the request has {len(rows)} rows but its response "
                                       f"{len(found)} predictions")
        if isinstance(contract, LogContract):
            columns = typed_columns(contract, rows)
            # Without the model's task (the in-process logger's bare features), the
            # predictions are the model server's own answers: written as they came.
            prediction = (typed_predictions(contract, predictions) if contract.task
                          else _column(predictions))
        else:
            columns = _untyped_columns(rows, contract)
            prediction = _column(predictions)
        n = len(rows)
        columns.update({
            REQUEST_ID: pa.array([request.id] * n, pa.string()),
            ROW: pa.array(range(n), pa.int64()),
            ROW_ID: pa.array([request.id if n == 1 else f"{request.id}/{i}" for i in range(n)],
                             pa.string()),
            LOGGED_AT: pa.array([request.time] * n, pa.timestamp("us", tz="UTC")),
            MODEL_VERSION: pa.array([version] * n, pa.string()),
            ENDPOINT: pa.array([request.endpoint] * n, pa.string()),
            PREDICTION: prediction,
        })
        return pa.table(columns)

    def _claim(self, request: InferenceEvent) -> bool:
        """Whether this writer owns ``request``: it made the claim now or before a restart.

        The claim is an object created if absent (atomic on S3 and on a folder), one per
        request id, holding the replica's name: of two replicas given the same event one
        writes it; the other drops it, the owner's spool keeps it until it is stored.
        """
        digest = hashlib.sha256(request.id.encode()).hexdigest()[:40]
        key = f"{CLAIMS_PREFIX}/{request.model}/date={self._day(request).isoformat()}/{digest}"
        mine = json.dumps({"replica": self.replica}).encode()
        if self.store.create_if_absent(key, mine):
            return True
        try:
            return self.store.get_bytes(key) == mine
        except Exception:  # noqa: BLE001 - unreadable claim: not ours to write
            return False

    def _claim_all(self, requests: list[InferenceEvent]) -> list[bool]:
        """:meth:`_claim` for each: several at once (a store call's latency each).

        One after another when there are few, or when no thread can be started (a flush
        at interpreter exit, ``serve --log-to``'s last one).
        """
        if len(requests) <= 1:
            return [self._claim(r) for r in requests]
        try:
            with ThreadPoolExecutor(max_workers=CLAIM_CONCURRENCY) as pool:
                return list(pool.map(self._claim, requests))
        except RuntimeError as exc:
            if "shutdown" not in str(exc):
                raise
            return [self._claim(r) for r in requests]

    def _write(self, taken: list[tuple[InferenceEvent, InferenceEvent | None]]) -> list[str]:
        groups: dict[str, list[pa.Table]] = {}
        ids: dict[str, set[str]] = {}
        dead: list[DeadLetter] = []
        todo = [(request, response, self._version(request)) for request, response in taken]
        # Stored before a restart (the spool was not trimmed yet): nothing to claim.
        todo = [(r, p, v) for r, p, v in todo
                if r.id not in self._partition(r.model, v, self._day(r)).written]
        owned = self._claim_all([r for r, _, _ in todo])
        for (request, response, version), mine in zip(todo, owned, strict=True):
            prefix = partition_prefix(request.model, version, self._day(request))
            if not mine:
                with self._lock:
                    self.stats.claimed_elsewhere += 1
                continue
            try:
                table = self._pair(request, response, version)
            except StoreError:
                raise  # the registry unreachable: the flush fails and is retried, not a letter
            except (KfpMlopsError, ValueError, TypeError, RecursionError, pa.ArrowException,
                    OverflowError) as exc:
                dead.append(DeadLetter(request, response, str(exc)[:500]))
                continue
            groups.setdefault(prefix, []).append(table)
            ids.setdefault(prefix, set()).add(request.id)
        written = self._write_dead_letters(dead)
        for prefix, tables in sorted(groups.items()):
            try:
                table = pa.concat_tables(tables, promote_options="permissive")
            except (pa.ArrowException, ValueError) as exc:  # untyped rows that disagree
                log.warning("rows of %s disagree in type (%s): written one file a request",
                            prefix, exc)
                parts = tables
            else:
                parts = [table]
            for part in parts:
                part_ids = sorted(set(part.column(REQUEST_ID).to_pylist()))
                digest = hashlib.sha256("\n".join(part_ids).encode()).hexdigest()[:20]
                key = f"{prefix}part-{digest}.parquet"
                with tempfile.TemporaryDirectory(prefix="kfp-mlops-log-") as tmp:
                    path = Path(tmp) / "part.parquet"
                    pq.write_table(part, path)
                    self.store.upload_file(key, path)  # atomic: a reader never sees half
                with self._lock:
                    self._partitions.setdefault(prefix, _Partition()).written.update(part_ids)
                    self.stats.rows_written += part.num_rows
                    self.stats.files_written += 1
                written.append(key)
        with self._lock:
            self.stats.unanswered += sum(1 for _, p in taken if p is None)
            self._held_bytes -= sum(r.cost + (p.cost if p else 0) for r, p in taken)
        return written

    def _write_dead_letters(self, dead: list[DeadLetter]) -> list[str]:
        """Keep refused requests under the dead-letter prefix, one file a model and day."""
        groups: dict[str, list[DeadLetter]] = {}
        for letter in dead:
            prefix = dead_letter_prefix(letter.request.model, self._day(letter.request))
            groups.setdefault(prefix, []).append(letter)
        written = []
        for prefix, letters in sorted(groups.items()):
            table = pa.table({
                REQUEST_ID: pa.array([d.request.id for d in letters], pa.string()),
                LOGGED_AT: pa.array([d.request.time for d in letters],
                                    pa.timestamp("us", tz="UTC")),
                MODEL_VERSION: pa.array([d.request.version for d in letters], pa.string()),
                ENDPOINT: pa.array([d.request.endpoint for d in letters], pa.string()),
                "_reason": pa.array([d.reason for d in letters], pa.string()),
                "_request": pa.array([d.request.data for d in letters], pa.binary()),
                "_response": pa.array([d.response.data if d.response else None
                                       for d in letters], pa.binary()),
            })
            digest = hashlib.sha256("\n".join(sorted(d.request.id for d in letters))
                                    .encode()).hexdigest()[:20]
            key = f"{prefix}part-{digest}.parquet"
            with tempfile.TemporaryDirectory(prefix="kfp-mlops-log-") as tmp:
                path = Path(tmp) / "part.parquet"
                pq.write_table(table, path)
                self.store.upload_file(key, path)
            with self._lock:
                self.stats.dead_letters += len(letters)
            for letter in letters[:3]:
                log.warning("request %s of %s is a dead letter: %s", letter.request.id[:40],
                            letter.request.model, letter.reason)
            written.append(key)
        return written

    # ------------------------------------------------------------ the spool

    def _segment_path(self, number: int) -> Path:
        assert self._spool is not None
        return self._spool / f"segment-{number:012d}.jsonl"

    def _spool_usage(self) -> int:
        if self._spool is None:
            return 0
        return sum(p.stat().st_size for p in self._spool.glob("segment-*.jsonl")
                   if p.exists())

    def _open_segment(self) -> None:
        self._segment_no += 1
        self._segment = open(self._segment_path(self._segment_no), "ab")

    def _append(self, event: InferenceEvent, sync: bool = True, capped: bool = True) -> None:
        """Write one spool line whole, or nothing (a failed write is cut off again).

        ``sync=False``: no fsync now (the caller syncs once after many lines).
        ``capped=False``: past ``spool_bytes`` too (the half that completes a pair; at most
        as much again as the cap, which is why the manifest's cap is under half the volume).
        """
        line = (event.to_json() + "\n").encode()
        if capped and self.spool_cap is not None and \
                self._spool_size + len(line) > self.spool_cap:
            raise SpoolFullError(errno.ENOSPC, f"the spool holds {self._spool_size} bytes "
                                 f"and its cap is {self.spool_cap}")
        if self._segment is None:
            self._open_segment()
        start = self._segment.tell()
        try:
            self._segment.write(line)
            self._segment.flush()  # in the OS: survives the process being killed
            if self.fsync and sync:
                os.fsync(self._segment.fileno())  # on the disk: survives the node too
        except OSError as exc:
            try:
                self._segment.truncate(start)  # never half a line before the next one
                self._segment.seek(start)
            except OSError:
                self._segment.close()
                self._segment = None  # the next event starts a new segment
            raise SpoolFullError(exc.errno or errno.EIO,
                                 f"could not spool the event: {exc}") from exc
        self._spool_size += len(line)

    def _rotate(self, kept: Iterable[tuple[InferenceEvent, float]]) -> list[Path]:
        """Start a new segment holding the events still waiting; return the old ones.

        If the new segment cannot be written whole (disk full), it is removed and no old
        segment is returned: they still hold every event, and replay drops the ones that
        reach the store.
        """
        old = sorted(self._spool.glob("segment-*.jsonl")) if self._spool else []
        if self._segment is not None:
            self._segment.close()
        self._segment = None
        try:
            self._open_segment()
            for event, _ in kept:
                self._append(event, sync=False, capped=False)  # admitted already
            self._sync()  # one fsync for the segment, not one a line
        except OSError as exc:
            log.warning("could not rewrite the spool (%s); keeping its old segments", exc)
            if self._segment is not None:
                self._segment.close()
                self._segment = None
            self._segment_path(self._segment_no).unlink(missing_ok=True)
            self._spool_size = self._spool_usage()
            return []
        current = self._segment_path(self._segment_no)
        return [p for p in old if p != current]

    def _recover(self) -> None:
        """Replay the spool: every event checked again, as one off the wire would be."""
        assert self._spool is not None
        segments = sorted(self._spool.glob("segment-*.jsonl"))
        if segments:
            self._segment_no = int(segments[-1].stem.split("-")[1])
        replayed = 0
        for segment in segments:
            with open(segment, "rb") as lines:
                for line in lines:
                    try:
                        event = check_event(InferenceEvent.from_json(line.decode("utf-8")),
                                            now=datetime.now(timezone.utc))
                    except CloudEventError as exc:
                        self.stats.replay_refused += 1
                        log.warning("a spooled event no longer passes the checks: %s", exc)
                        continue
                    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                        continue  # a line cut short by the kill: its sender got no answer
                    if event.key in self._events or self._stored_quietly(event):
                        continue
                    self._events[event.key] = (event, self.clock())
                    self._held_bytes += event.cost
                    replayed += 1
        self._spool_size = self._spool_usage()
        if self._events:
            self._first_at = self.clock()
        if replayed:
            log.info("replayed %d events from %d spool segments", replayed, len(segments))

    def close(self) -> list[str]:
        """Flush everything (waiting requests too) and close the spool."""
        written = self.flush(everything=True)
        with self._lock:
            if self._segment is not None:
                self._segment.close()
                self._segment = None
        return written


def _column(values: list[Any]) -> pa.Array:
    """Values as one Arrow column; mixed Python types are written as text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _untyped_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, pa.Array]:
    """Rows without a typed contract (the in-process logger's names only): as sent."""
    out_names = list(names)
    for row in rows:
        out_names.extend(n for n in row if n not in out_names and not n.startswith("_")
                         and isinstance(row[n], (str, int, float, bool)))
    return {name: _column([row.get(name) for row in rows]) for name in out_names}


class Flusher:
    """A daemon thread that flushes ``log`` whenever a micro-batch is due.

    A failed flush (the store down) is logged and retried with a growing pause (up to
    ``max_backoff_s``); no exception stops the thread.
    """

    def __init__(self, log_: PredictionLog, interval_s: float = 0.2,
                 max_backoff_s: float = 10.0):
        self.log = log_
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log-flush",
                                        daemon=True)

    def start(self) -> Flusher:
        """Start the thread."""
        self._thread.start()
        return self

    def _run(self) -> None:
        pause = self.interval_s
        while not self._stop.wait(pause):
            try:
                if self.log.due():
                    self.log.flush()
                pause = self.interval_s
            except BaseException:  # noqa: BLE001 - keep flushing; the spool keeps the rows
                log.exception("flushing the prediction log failed; retrying in %.1f s",
                              min(self.max_backoff_s, pause * 2))
                pause = min(self.max_backoff_s, pause * 2)

    def stop(self, drain_s: float | None = None) -> list[str]:
        """Stop the thread, then flush everything (retrying for up to ``drain_s``)."""
        self._stop.set()
        self._thread.join()
        deadline = time.monotonic() + (drain_s or 0.0)
        while True:
            try:
                return self.log.close()
            except Exception as exc:  # noqa: BLE001 - the spool keeps what is not stored
                if time.monotonic() >= deadline:
                    log.error("could not write the buffered rows before stopping (%s); the "
                              "spool keeps them for the next start", exc)
                    return []
                time.sleep(0.5)
