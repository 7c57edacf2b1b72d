"""The prediction log sink: KServe's inference logger CloudEvents in, Parquet in the store out.

``python -m kfp_mlops.live.log_sink --store s3://bucket/prefix --port 8080`` (the
StatefulSet in ``manifests/base/log-sink``). Point an InferenceService's ``logger.url`` at it.

- ``POST`` any path: one CloudEvent (binary or structured mode), read by the CNCF
  ``cloudevents`` SDK and checked whole (size, encoding, JSON depth, attributes, time)
  before it is acknowledged. ``200`` once the event is in the spool file (or it is a
  duplicate, already buffered or stored). ``4xx`` for a request that would never
  succeed (counted in ``/metrics`` by reason, one log line each): ``400`` not an
  inference logger event, ``411`` no ``Content-Length``, ``413`` too large. ``503``
  with ``Retry-After`` when the event could not be taken now: the byte budget of held
  events is spent, or the spool is full or failing. A well-formed request whose rows
  the model's input contract refuses is acknowledged and kept as a *dead letter*
  (``predictions/_dead-letters/``), never as rows monitoring reads.
- ``GET /healthz``: ``200`` while flushing works, ``503`` once flushing has failed for
  longer than ``--unhealthy-after`` seconds (the readiness probe: traffic goes to the
  other replicas); ``GET /livez``: ``200`` while the process serves; ``GET /metrics``:
  Prometheus text counters.

Rows reach the store in micro-batches of ``--max-rows`` pairs or ``--max-age`` seconds,
whichever comes first, and all of them at SIGTERM (within ``--drain-seconds``; what
is not stored by then stays in the spool for the next start). No KServe import.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.live.logged import LogContract
from kfp_mlops.live.prediction_log import (
    EVENT_OVERHEAD,
    MAX_EVENT_BYTES,
    BudgetExceeded,
    CloudEventError,
    Flusher,
    PredictionLog,
    parse_cloudevent,
)
from kfp_mlops.storage import StoreError

log = logging.getLogger("kfp_mlops.live.log_sink")

DEFAULT_SPOOL = "/var/spool/kfp-mlops"
PARSE_SLOTS = 2  # events parsed at once: bounds the memory JSON parsing takes
MAX_CONNECTIONS = 256  # open client connections (a thread each); more are answered 503


class RegistryLookups:
    """Features and production version of a model, from the registry, cached."""

    def __init__(self, store: Any, ttl_s: float = 30.0):
        self.store = store
        self.ttl_s = ttl_s
        self._features: dict[tuple[str, str], LogContract] = {}
        self._production: dict[str, tuple[float, str | None]] = {}

    def features(self, model: str, version: str) -> LogContract | None:
        """The input contract of ``model@version`` (None when the registry has no such version).

        A store failure raises (the flush is retried); only a version the registry does
        not have is None, and its events are dead letters.
        """
        from kfp_mlops.model.registry import Registry, RegistryError

        key = (model, version)
        if key not in self._features:
            try:
                metadata = Registry(self.store).get(f"{model}@{version}").metadata
            except (RegistryError, ValueError) as exc:
                if isinstance(exc, StoreError):
                    raise
                log.warning("no registry version %s@%s: its events are dead letters", model,
                            version)
                return None
            self._features[key] = LogContract.of(metadata)
        return self._features[key]

    def production(self, model: str) -> str | None:
        """The production version of ``model`` now (for events that name no version)."""
        from kfp_mlops.model.registry import Registry, RegistryError

        cached = self._production.get(model)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        try:
            version: str | None = str(Registry(self.store).get(f"{model}@production").version)
        except (RegistryError, ValueError) as exc:
            if isinstance(exc, StoreError):
                raise
            version = None
        self._production[model] = (time.monotonic(), version)
        return version


class SinkServer(ThreadingHTTPServer):
    """The HTTP server: one thread a connection, a bound on what they hold together."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], prediction_log: PredictionLog,
                 unhealthy_after_s: float, max_event_bytes: int, retry_after_s: int):
        self.prediction_log = prediction_log
        self.unhealthy_after_s = unhealthy_after_s
        self.max_event_bytes = max_event_bytes
        self.retry_after_s = retry_after_s
        self.parse_slots = threading.BoundedSemaphore(PARSE_SLOTS)
        self.connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.draining = False
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread a connection, at most :data:`MAX_CONNECTIONS` at once (then 503)."""
        if not self.connections.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                                b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            self.prediction_log.refused("too_many_connections")
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not a traceback: a client that hung up mid-answer is not news."""
        exc = sys.exc_info()[1]
        log.warning("connection from %s ended: %s: %s", client_address[0],
                    type(exc).__name__, str(exc)[:200])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stops sending mid-body frees its thread
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK hold each answer ~40 ms on a keep-alive connection.
    disable_nagle_algorithm = True
    server: SinkServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug(format, *args)

    def _answer(self, status: int, body: str, content_type: str = "text/plain",
                retry_after: int | None = None, close: bool = False) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, reason: str, message: str, close: bool = False) -> None:
        self.server.prediction_log.refused(reason)
        log.warning("refused a request from %s (HTTP %d, %s): %s", self.client_address[0],
                    status, reason, message[:300])
        self._answer(status, f"{message}\n", close=close)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        prediction_log = self.server.prediction_log
        if self.path.startswith("/healthz"):
            failing = prediction_log.unhealthy_for()
            if self.server.draining:
                self._answer(503, "draining: stopping after the last flush\n")
            elif failing > self.server.unhealthy_after_s:
                self._answer(503, f"flushing has failed for {failing:.0f} s (bound "
                                  f"{self.server.unhealthy_after_s:.0f} s): "
                                  f"{prediction_log.last_error[:300]}\n")
            else:
                self._answer(200, "ok\n")
        elif self.path.startswith("/livez"):
            self._answer(200, "ok\n")
        elif self.path.startswith("/metrics"):
            self._answer(200, metrics_text(prediction_log), "text/plain; version=0.0.4")
        else:
            self._answer(404, "POST CloudEvents to any path; GET /healthz, /livez, /metrics\n")

    def _length(self) -> int | None:
        """The body's length, or None once a refusal was answered."""
        if self.headers.get("Transfer-Encoding"):
            self._refuse(411, "no_length", "chunked bodies are not taken; send "
                         "Content-Length (KServe's agent does)", close=True)
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self._refuse(411, "no_length", "a CloudEvent POST needs a Content-Length",
                         close=True)
            return None
        text = values[0].strip()
        if len(values) > 1 or not text.isdigit() or len(text) > 12:
            self._refuse(400, "bad_length", f"Content-Length {', '.join(values)[:40]!r} is "
                         "not one non-negative integer", close=True)
            return None
        length = int(text)
        if length > self.server.max_event_bytes:
            self._refuse(413, "too_large", f"events over {self.server.max_event_bytes} bytes "
                         "are refused", close=True)
            return None
        return length

    def do_POST(self) -> None:  # noqa: N802
        prediction_log = self.server.prediction_log
        length = self._length()
        if length is None:
            return
        cost = length + EVENT_OVERHEAD
        try:
            prediction_log.reserve(cost)
        except BudgetExceeded as exc:
            prediction_log.refused("over_budget")
            log.warning("answered 503: %s", exc)
            self._answer(503, f"{exc}\n", retry_after=self.server.retry_after_s, close=True)
            return
        try:
            body = self.rfile.read(length)
            if len(body) != length:
                self._refuse(400, "short_body", f"the body ended after {len(body)} of "
                             f"{length} bytes", close=True)
                return
            with self.server.parse_slots:
                event = parse_cloudevent(dict(self.headers.items()), body)
        except CloudEventError as exc:
            self._refuse(400, "invalid_event", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - never drop a connection unanswered
            self._refuse(400, "unreadable", f"the request could not be read: "
                         f"{type(exc).__name__}: {str(exc)[:200]}", close=True)
            return
        finally:
            prediction_log.release(cost)
        try:
            new = prediction_log.accept(event)
        except (OSError, KfpMlopsError) as exc:  # the spool, or the store's ids
            log.error("could not take event %s: %s", event.id[:40], exc)
            self._answer(503, f"could not keep the event ({exc}); retry\n",
                         retry_after=self.server.retry_after_s)
            return
        self._answer(200, "accepted\n" if new else "duplicate\n")


def metrics_text(prediction_log: PredictionLog) -> str:
    """The log's counters in the Prometheus text format."""
    stats = prediction_log.stats
    lines = []
    for name, value, text in (
        ("accepted_events", stats.accepted, "Events accepted (new)."),
        ("duplicate_events", stats.duplicates, "Redelivered events dropped."),
        ("rows_written", stats.rows_written, "Prediction rows written to the store."),
        ("files_written", stats.files_written, "Parquet micro-batches written."),
        ("unanswered_requests", stats.unanswered, "Requests written without a response."),
        ("orphan_responses", stats.orphan_responses, "Responses whose request never came."),
        ("dead_letters", stats.dead_letters,
         "Requests kept under predictions/_dead-letters/: the model's contract refused them."),
        ("claimed_elsewhere", stats.claimed_elsewhere,
         "Requests another replica claimed (and writes): dropped here."),
        ("flush_failures", stats.flush_failures, "Flushes that failed (retried)."),
        ("replay_refused", stats.replay_refused,
         "Spooled events that failed the checks when replayed."),
    ):
        metric = f"kfp_mlops_log_sink_{name}_total"
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter", f"{metric} {value}"]
    metric = "kfp_mlops_log_sink_refused_requests_total"
    lines += [f"# HELP {metric} Requests answered 4xx or 503, by reason.",
              f"# TYPE {metric} counter"]
    lines += [f'{metric}{{reason="{reason}"}} {count}'
              for reason, count in sorted(dict(stats.refused).items())]
    for name, value, text in (
        ("buffered_events", prediction_log.buffered(), "Events held, not yet in the store."),
        ("held_bytes", prediction_log.held_bytes(),
         "Bytes of event bodies held in memory (the budget bounds it)."),
        ("flush_failing_seconds", round(prediction_log.unhealthy_for(), 3),
         "Seconds flushing has been failing (0 when the last flush succeeded)."),
    ):
        metric = f"kfp_mlops_log_sink_{name}"
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} gauge", f"{metric} {value}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The sink's command line."""
    from kfp_mlops.storage import DEFAULT_STORE_ENV

    parser = argparse.ArgumentParser(
        prog="python -m kfp_mlops.live.log_sink",
        description="Receive KServe inference logger CloudEvents and append them to the "
        "store as Parquet, exactly once per request.",
    )
    parser.add_argument("--store", default=None,
                        help=f"store URI (default: ${DEFAULT_STORE_ENV}, else ./mlops-store)")
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--spool-dir", default=DEFAULT_SPOOL,
                        help="local folder of not-yet-stored events (a volume in a pod)")
    parser.add_argument("--spool-bytes", type=int, default=None,
                        help="cap on the spool's size; events past it are answered 503 "
                        "(default: the disk's size)")
    parser.add_argument("--max-rows", type=int, default=1000,
                        help="request/response pairs per micro-batch (default 1000)")
    parser.add_argument("--max-age", type=float, default=10.0,
                        help="seconds before a partial micro-batch is written (default 10)")
    parser.add_argument("--pending", type=float, default=300.0,
                        help="seconds a request waits for its response (default 300)")
    parser.add_argument("--fsync", action="store_true",
                        help="fsync the spool per event (survives a node crash; slower)")
    parser.add_argument("--max-event-bytes", type=int, default=MAX_EVENT_BYTES,
                        help=f"largest event body taken (default {MAX_EVENT_BYTES}; at most "
                        "that)")
    parser.add_argument("--budget-bytes", type=int, default=256 * 1024 * 1024,
                        help="event bytes held in memory at most; past it POSTs are "
                        "answered 503 with Retry-After (default 256 MiB)")
    parser.add_argument("--unhealthy-after", type=float, default=120.0,
                        help="seconds of failed flushes before /healthz answers 503 "
                        "(default 120)")
    parser.add_argument("--drain-seconds", type=float, default=45.0,
                        help="at SIGTERM, how long to keep retrying the last flush "
                        "(default 45; keep it under terminationGracePeriodSeconds)")
    parser.add_argument("--replica-id", default=None,
                        help="this writer's name in the per-request claims (default: the "
                        "host name, a StatefulSet pod's stable name)")
    args = parser.parse_args(argv)
    if not 0 < args.max_event_bytes <= MAX_EVENT_BYTES:
        parser.error(f"--max-event-bytes must be from 1 to {MAX_EVENT_BYTES}")
    if args.budget_bytes < args.max_event_bytes:
        parser.error("--budget-bytes must hold at least one event (--max-event-bytes)")
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a TCP port; give 1 to 65535")
    return args


def build(args: argparse.Namespace) -> tuple[SinkServer, PredictionLog]:
    """The HTTP server and the log behind it (not started)."""
    from kfp_mlops.storage import open_store

    store = open_store(args.store)
    store.ensure_ready()
    if not store.supports_conditional_writes():
        log.warning("the store ignores If-None-Match: the per-request claims cannot keep two "
                    "sink replicas from writing one request twice; run one replica")
    lookups = RegistryLookups(store)
    prediction_log = PredictionLog(
        store, lookups.features, version_for=lookups.production, max_rows=args.max_rows,
        max_age_s=args.max_age, pending_s=args.pending, spool_dir=args.spool_dir,
        spool_bytes=args.spool_bytes, fsync=args.fsync, budget_bytes=args.budget_bytes,
        replica=args.replica_id or socket.gethostname(),
    )
    server = SinkServer((args.host, args.port), prediction_log,
                        unhealthy_after_s=args.unhealthy_after,
                        max_event_bytes=args.max_event_bytes,
                        retry_after_s=max(1, int(args.max_age)))
    return server, prediction_log


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then write every buffered row and exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        server, prediction_log = build(args)
    except (KfpMlopsError, OSError) as exc:
        print(f"kfp-mlops log sink: cannot start: {exc}", file=sys.stderr)
        return 2
    flusher = Flusher(prediction_log).start()
    # `kill -USR1 PID` prints every thread's stack to stderr: where a stuck flush waits.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping, writing buffered rows", signum)
        server.draining = True
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("prediction log sink %s on %s:%d -> %s (spool %s)", prediction_log.replica,
             args.host, server.server_address[1], prediction_log.store.uri, args.spool_dir)
    print(f"listening on {args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        written = flusher.stop(drain_s=args.drain_seconds)
        log.info("stopped after %.0f s; last flush wrote %d files, %d events left in the "
                 "spool", time.monotonic() - started, len(written), prediction_log.buffered())
    return 0


if __name__ == "__main__":
    sys.exit(main())
