"""The prediction log sink: KServe's inference logger CloudEvents in, Parquet in the store out.

``python -m kfp_mlops.serving.log_sink --store s3://bucket/prefix --port 8080`` (the
Deployment in ``manifests/log-sink``). Point an InferenceService's ``logger.url`` at it.

- ``POST`` any path: one CloudEvent (binary or structured mode). ``200`` once the event
  is in the spool file (or it is a duplicate, already buffered or stored); ``400`` for a
  request that is not an inference logger event (it would never succeed); ``503`` when
  the event could not be spooled (retry it).
- ``GET /healthz``: ``200`` while serving; ``GET /metrics``: Prometheus text counters.

Rows reach the store in micro-batches of ``--max-rows`` pairs or ``--max-age`` seconds,
whichever comes first, and all of them at SIGTERM. No KServe import: it starts fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.serving.prediction_log import (
    CloudEventError,
    Flusher,
    PredictionLog,
    parse_cloudevent,
)

log = logging.getLogger("kfp_mlops.serving.log_sink")

MAX_EVENT_BYTES = 64 * 1024 * 1024
DEFAULT_SPOOL = "/var/spool/kfp-mlops"


class RegistryLookups:
    """Features and production version of a model, from the registry, cached."""

    def __init__(self, store: Any, ttl_s: float = 30.0):
        self.store = store
        self.ttl_s = ttl_s
        self._features: dict[tuple[str, str], list[str]] = {}
        self._production: dict[str, tuple[float, str | None]] = {}

    def features(self, model: str, version: str) -> list[str]:
        """The feature names of ``model@version`` ([] when the registry has no such version)."""
        from kfp_mlops.model.registry import Registry, RegistryError

        key = (model, version)
        if key not in self._features:
            try:
                self._features[key] = Registry(self.store).get(
                    f"{model}@{version}").metadata.feature_names
            except (RegistryError, ValueError):
                log.warning("no registry version %s@%s: rows sent as lists cannot be named; "
                            "records and V2 column inputs are logged as sent", model, version)
                self._features[key] = []
        return self._features[key]

    def production(self, model: str) -> str | None:
        """The production version of ``model`` now (for events that name no version)."""
        from kfp_mlops.model.registry import Registry, RegistryError

        cached = self._production.get(model)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        try:
            version: str | None = str(Registry(self.store).get(f"{model}@production").version)
        except (RegistryError, ValueError):
            version = None
        self._production[model] = (time.monotonic(), version)
        return version


def _handler(prediction_log: PredictionLog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug(format, *args)

        def _answer(self, status: int, body: str, content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith("/healthz"):
                self._answer(200, "ok\n")
            elif self.path.startswith("/metrics"):
                self._answer(200, metrics_text(prediction_log), "text/plain; version=0.0.4")
            else:
                self._answer(404, "POST CloudEvents to any path; GET /healthz, /metrics\n")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_EVENT_BYTES:
                self._answer(413, f"events over {MAX_EVENT_BYTES} bytes are refused\n")
                self.close_connection = True
                return
            body = self.rfile.read(length)
            try:
                event = parse_cloudevent(dict(self.headers.items()), body)
            except CloudEventError as exc:
                log.warning("refused a request: %s", exc)
                self._answer(400, f"{exc}\n")
                return
            try:
                new = prediction_log.accept(event)
            except (OSError, KfpMlopsError) as exc:  # the spool, or the store's ids
                log.error("could not take event %s: %s", event.id, exc)
                self._answer(503, f"could not store the event ({exc}); retry\n")
                return
            self._answer(200, "accepted\n" if new else "duplicate\n")

    return Handler


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
    ):
        metric = f"kfp_mlops_log_sink_{name}_total"
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter", f"{metric} {value}"]
    lines += ["# HELP kfp_mlops_log_sink_buffered_events Events held, not yet in the store.",
              "# TYPE kfp_mlops_log_sink_buffered_events gauge",
              f"kfp_mlops_log_sink_buffered_events {prediction_log.buffered()}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The sink's command line."""
    from kfp_mlops.storage import DEFAULT_STORE_ENV

    parser = argparse.ArgumentParser(
        prog="python -m kfp_mlops.serving.log_sink",
        description="Receive KServe inference logger CloudEvents and append them to the "
        "store as Parquet, exactly once per request.",
    )
    parser.add_argument("--store", default=None,
                        help=f"store URI (default: ${DEFAULT_STORE_ENV}, else ./mlops-store)")
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--spool-dir", default=DEFAULT_SPOOL,
                        help="local folder of not-yet-stored events (a volume in a pod)")
    parser.add_argument("--max-rows", type=int, default=1000,
                        help="request/response pairs per micro-batch (default 1000)")
    parser.add_argument("--max-age", type=float, default=10.0,
                        help="seconds before a partial micro-batch is written (default 10)")
    parser.add_argument("--pending", type=float, default=300.0,
                        help="seconds a request waits for its response (default 300)")
    parser.add_argument("--fsync", action="store_true",
                        help="fsync the spool per event (survives a node crash; slower)")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[ThreadingHTTPServer, PredictionLog]:
    """The HTTP server and the log behind it (not started)."""
    from kfp_mlops.storage import open_store

    store = open_store(args.store)
    store.ensure_ready()
    lookups = RegistryLookups(store)
    prediction_log = PredictionLog(
        store, lookups.features, version_for=lookups.production, max_rows=args.max_rows,
        max_age_s=args.max_age, pending_s=args.pending, spool_dir=args.spool_dir,
        fsync=args.fsync,
    )
    server = ThreadingHTTPServer((args.host, args.port), _handler(prediction_log))
    server.daemon_threads = True
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

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping, writing buffered rows", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("prediction log sink on %s:%d -> %s (spool %s)", args.host,
             server.server_address[1], prediction_log.store.uri, args.spool_dir)
    print(f"listening on {args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        written = flusher.stop()
        log.info("stopped; last flush wrote %d files", len(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
