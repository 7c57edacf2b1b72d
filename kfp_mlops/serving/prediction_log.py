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
dropped. With a spool folder every accepted event is appended to a local segment file
before :meth:`PredictionLog.accept` returns (so the sink acknowledges it only once a
killed process would find it again), and segments are deleted only after the rows they
hold are in the store; a restarted log replays them. Pure logic plus the store and the
spool files: no HTTP here (:mod:`kfp_mlops.serving.log_sink` serves it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.logged import (
    ENDPOINT,
    LOGGED_AT,
    MODEL_VERSION,
    PREDICTION,
    REQUEST_ID,
    ROW,
    ROW_ID,
    VERSION_ANNOTATION,
    check_name,
    partition_prefix,
)
from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.storage import Store

log = logging.getLogger(__name__)

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
EVENT_TYPES = (REQUEST_TYPE, RESPONSE_TYPE)
UNVERSIONED = "unversioned"
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


def parse_cloudevent(headers: Mapping[str, str], body: bytes) -> InferenceEvent:
    """The event in an HTTP request, binary (``ce-*`` headers) or structured mode."""
    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type", "")
    if "ce-specversion" in lower:
        attrs = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
        data = body
    elif content_type.split(";")[0].strip().lower() == STRUCTURED_CONTENT_TYPE:
        try:
            envelope = json.loads(body)
        except ValueError:
            raise CloudEventError("a structured CloudEvent body is not JSON") from None
        if not isinstance(envelope, dict):
            raise CloudEventError("a structured CloudEvent must be a JSON object")
        attrs = {k.lower(): v for k, v in envelope.items() if k not in ("data", "data_base64")}
        content_type = str(envelope.get("datacontenttype", "application/json"))
        if "data_base64" in envelope:
            data = base64.b64decode(envelope["data_base64"])
        else:
            raw = envelope.get("data")
            data = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
    else:
        raise CloudEventError(
            "not a CloudEvent: no ce-specversion header (binary mode) and the content type "
            f"is {content_type!r}, not {STRUCTURED_CONTENT_TYPE} (structured mode); point "
            "the InferenceService's logger.url at this sink"
        )
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
    try:
        check_name(model, "inferenceservicename")
    except ValueError as exc:
        raise CloudEventError(str(exc)) from None
    when = parse_ce_time(str(attrs["time"])) if attrs.get("time") else datetime.now(timezone.utc)
    return InferenceEvent(
        id=str(attrs["id"]), type=str(attrs["type"]), source=str(attrs["source"]), time=when,
        model=model, data=bytes(data), content_type=content_type or "application/json",
        namespace=str(attrs.get("namespace", "")), component=str(attrs.get("component", "")),
        endpoint=str(attrs.get("endpoint", "")),
        version=_version_of(attrs.get("annotations"), attrs.get("modelversion")),
    )


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
    try:
        return json.loads(data)
    except ValueError:
        raise CloudEventError(f"the {what} body is not JSON; only JSON V1/V2 bodies are "
                              "logged") from None


def _flat(values: Any) -> list[Any]:
    if values and isinstance(values[0], list):
        return [v for sub in values for v in (sub if isinstance(sub, list) else [sub])]
    return list(values)


def request_rows(data: bytes, features: list[str]) -> list[dict[str, Any]]:
    """The input rows of a V1 (rows or records) or V2 (columns or one tensor) body.

    Records keep every field the client sent (a key column for the labels join among
    them); rows in feature order and V2 tensors are named by ``features``.
    """
    body = _json(data, "request")
    if not isinstance(body, dict):
        raise CloudEventError("the request body is not a JSON object")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise CloudEventError("the V1 request's 'instances' is not a list")
        if instances and isinstance(instances[0], dict):
            return [dict(row) for row in instances]
        return [dict(zip(features, row, strict=False)) for row in instances]
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise CloudEventError("the request body has neither V1 'instances' nor V2 'inputs'")
    names = [str(item.get("name")) for item in inputs]
    if len(inputs) == 1 and names[0] not in features and len(features) > 1:
        values = _flat(inputs[0].get("data") or [])
        width = len(features)
        return [dict(zip(features, values[i:i + width], strict=False))
                for i in range(0, len(values), width)]
    columns = {name: _flat(item.get("data") or []) for name, item in zip(names, inputs,
                                                                          strict=True)}
    rows = max(len(v) for v in columns.values())
    return [{name: (values[i] if i < len(values) else None) for name, values in columns.items()}
            for i in range(rows)]


def response_predictions(data: bytes) -> list[Any]:
    """The predictions of a V1 (``predictions``) or V2 (output ``predictions``) body."""
    body = _json(data, "response")
    if isinstance(body, dict) and isinstance(body.get("predictions"), list):
        return list(body["predictions"])
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if isinstance(outputs, list) and outputs:
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


FeaturesFor = Callable[[str, str], list[str]]
VersionFor = Callable[[str], str | None]


class PredictionLog:
    """Matched request/response pairs appended to the store in bounded micro-batches.

    ``features_for(model, version)`` names the feature columns (V1 rows and V2 tensors
    carry values in that order); ``version_for(model)`` is asked when an event names no
    version (e.g. the registry's production version). ``max_rows``/``max_age_s`` bound a
    batch: :meth:`due` says when to :meth:`flush`. ``pending_s``: how long a request
    waits for its response before it is written without one (``logger.mode: request``,
    or a non-200 answer, which KServe does not log). ``spool_dir``: see the module text.
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
        fsync: bool = False,
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
        self.clock = clock
        self.stats = LogStats()
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._events: dict[tuple[str, str], tuple[InferenceEvent, float]] = {}
        # Taken by a flush and not yet in the store: still duplicates if redelivered.
        self._inflight: set[tuple[str, str]] = set()
        self._partitions: dict[str, _Partition] = {}
        self._first_at: float | None = None
        self._spool = Path(spool_dir) if spool_dir else None
        self._segment: Any = None
        self._segment_no = 0
        if self._spool is not None:
            self._spool.mkdir(parents=True, exist_ok=True)
            self._recover()

    # ------------------------------------------------------------ accepting

    def accept(self, event: InferenceEvent) -> bool:
        """Take one event; False when it is a duplicate (already buffered or stored).

        With a spool, the event is in the segment file when this returns True.
        """
        with self._lock:
            if event.key in self._events or event.key in self._inflight or self._stored(event):
                self.stats.duplicates += 1
                return False
            if self._spool is not None:
                self._append(event)
            self._events[event.key] = (event, self.clock())
            if self._first_at is None:
                self._first_at = self.clock()
            self.stats.accepted += 1
            return True

    def _version(self, event: InferenceEvent) -> str:
        version = event.version or (self.version_for(event.model) if self.version_for else None)
        return check_name(str(version), "model version") if version else UNVERSIONED

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
                    or self.clock() - self._first_at >= self.max_age_s)

    def flush(self, everything: bool = False) -> list[str]:
        """Write the matched pairs (and requests that waited too long) to the store.

        ``everything``: also requests still waiting for a response (at shutdown).
        Returns the keys written. Rows reach the store before the spool forgets them.
        """
        with self._flush_lock:
            with self._lock:
                now = self.clock()
                requests = {e.id: (e, t) for (_, kind), (e, t) in self._events.items()
                            if kind == REQUEST_TYPE}
                responses = {e.id: (e, t) for (_, kind), (e, t) in self._events.items()
                             if kind == RESPONSE_TYPE}
                taken: list[tuple[InferenceEvent, InferenceEvent | None]] = []
                for rid, (request, at) in requests.items():
                    response = responses.get(rid)
                    if response is not None:
                        taken.append((request, response[0]))
                    elif everything or now - at >= self.pending_s:
                        taken.append((request, None))
                orphans = [e for rid, (e, at) in responses.items() if rid not in requests
                           and (everything or now - at >= self.pending_s)]
                done = {r.key for r, _ in taken} | {p.key for _, p in taken if p} | {
                    o.key for o in orphans}
                keep = {k: v for k, v in self._events.items() if k not in done}
                old_segments = self._rotate(keep.values()) if self._spool is not None else []
                self._events = keep
                self._inflight = done
                self._first_at = min((t for _, t in keep.values()), default=None)
            try:
                written = self._write(taken)
            except BaseException:
                self._put_back(taken, orphans)
                raise
            finally:
                with self._lock:
                    self._inflight = set()
            with self._lock:
                self.stats.orphan_responses += len(orphans)
                self.stats.unanswered += sum(1 for _, p in taken if p is None)
            for segment in old_segments:
                segment.unlink(missing_ok=True)
            if orphans:
                log.warning("dropped %d responses whose request never came (ids %s)",
                            len(orphans), ", ".join(o.id for o in orphans[:5]))
            return written

    def _put_back(self, taken: list[tuple[InferenceEvent, InferenceEvent | None]],
                  orphans: list[InferenceEvent]) -> None:
        """After a failed write: hold again (and spool again) what did not reach the store."""
        with self._lock:
            events = [e for pair in taken for e in pair if e is not None] + orphans
            for event in events:
                if event.key in self._events or self._stored(event):
                    continue  # its partition was written before the failure
                if self._spool is not None:
                    self._append(event)
                self._events[event.key] = (event, self.clock())
            if self._events and self._first_at is None:
                self._first_at = self.clock()

    def _rows(self, request: InferenceEvent, response: InferenceEvent | None,
              version: str) -> list[dict[str, Any]]:
        features = self.features_for(request.model, version)
        rows = request_rows(request.data, features)
        predictions: list[Any] = [None] * len(rows)
        if response is not None:
            found = response_predictions(response.data)
            if len(found) == len(rows):
                predictions = found
            else:
                log.warning("request %s has %d rows but its response %d predictions; its "
                            "predictions are not logged", request.id, len(rows), len(found))
        out = []
        for i, (row, prediction) in enumerate(zip(rows, predictions, strict=True)):
            record = {name: row.get(name) for name in features}
            record.update({k: v for k, v in row.items() if k not in record and
                           isinstance(v, (str, int, float, bool)) and not k.startswith("_")})
            record.update({
                REQUEST_ID: request.id, ROW: i,
                ROW_ID: request.id if len(rows) == 1 else f"{request.id}/{i}",
                LOGGED_AT: request.time, MODEL_VERSION: version,
                ENDPOINT: request.endpoint, PREDICTION: prediction,
            })
            out.append(record)
        return out

    def _write(self, taken: list[tuple[InferenceEvent, InferenceEvent | None]]) -> list[str]:
        groups: dict[str, list[dict[str, Any]]] = {}
        ids: dict[str, set[str]] = {}
        for request, response in taken:
            version = self._version(request)
            prefix = partition_prefix(request.model, version, self._day(request))
            try:
                rows = self._rows(request, response, version)
            except CloudEventError as exc:
                log.warning("request %s of %s is not logged: %s", request.id,
                            request.model, exc)
                continue
            groups.setdefault(prefix, []).extend(rows)
            ids.setdefault(prefix, set()).add(request.id)
        written = []
        for prefix, rows in sorted(groups.items()):
            digest = hashlib.sha256("\n".join(sorted(ids[prefix])).encode()).hexdigest()[:20]
            key = f"{prefix}part-{digest}.parquet"
            table = _table(rows)
            with tempfile.TemporaryDirectory(prefix="kfp-mlops-log-") as tmp:
                path = Path(tmp) / "part.parquet"
                pq.write_table(table, path)
                self.store.upload_file(key, path)  # atomic: a reader never sees half
            with self._lock:
                self._partitions.setdefault(prefix, _Partition()).written.update(ids[prefix])
                self.stats.rows_written += table.num_rows
                self.stats.files_written += 1
            written.append(key)
        return written

    # ------------------------------------------------------------ the spool

    def _segment_path(self, number: int) -> Path:
        assert self._spool is not None
        return self._spool / f"segment-{number:012d}.jsonl"

    def _open_segment(self) -> None:
        self._segment_no += 1
        self._segment = open(self._segment_path(self._segment_no), "a", encoding="utf-8")

    def _append(self, event: InferenceEvent) -> None:
        if self._segment is None:
            self._open_segment()
        self._segment.write(event.to_json() + "\n")
        self._segment.flush()  # in the OS: survives the process being killed
        if self.fsync:
            os.fsync(self._segment.fileno())  # on the disk: survives the node too

    def _rotate(self, kept: Iterable[tuple[InferenceEvent, float]]) -> list[Path]:
        """Start a new segment holding the events still waiting; return the old ones."""
        old = sorted(self._spool.glob("segment-*.jsonl")) if self._spool else []
        if self._segment is not None:
            self._segment.close()
        self._segment = None
        self._open_segment()
        for event, _ in kept:
            self._append(event)
        current = self._segment_path(self._segment_no)
        return [p for p in old if p != current]

    def _recover(self) -> None:
        assert self._spool is not None
        segments = sorted(self._spool.glob("segment-*.jsonl"))
        if segments:
            self._segment_no = int(segments[-1].stem.split("-")[1])
        replayed = 0
        for segment in segments:
            for line in segment.read_text(encoding="utf-8").splitlines():
                try:
                    event = InferenceEvent.from_json(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by the kill: its sender got no answer
                if event.key in self._events or self._stored(event):
                    continue
                self._events[event.key] = (event, self.clock())
                replayed += 1
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


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table; a column of mixed Python types is written as text."""
    names: list[str] = []
    for row in rows:
        names.extend(n for n in row if n not in names)
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values])
    return pa.table(columns)


class Flusher:
    """A daemon thread that flushes ``log`` whenever a micro-batch is due."""

    def __init__(self, log_: PredictionLog, interval_s: float = 0.2):
        self.log = log_
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log-flush",
                                        daemon=True)

    def start(self) -> Flusher:
        """Start the thread."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if self.log.due():
                    self.log.flush()
            except Exception:  # noqa: BLE001 - keep flushing; the spool keeps the rows
                log.exception("flushing the prediction log failed; retrying")

    def stop(self) -> list[str]:
        """Stop the thread, then flush everything."""
        self._stop.set()
        self._thread.join()
        return self.log.close()
