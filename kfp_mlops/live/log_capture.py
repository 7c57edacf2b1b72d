"""``kfp-mlops serve --log-to STORE``: the ModelServer logs what it served, without a sink.

On a cluster KServe's agent sidecar copies each request and response to the logger URL
as CloudEvents (:mod:`kfp_mlops.live.prediction_log`). Locally there is no agent, so
this ASGI middleware does its job in-process: for every inference request answered 200
it builds the same two events the agent would (same id for both: the request's
``Ce-Id`` header, else a new UUID; ``time`` when the request came and when the answer
left; the request's content type) and hands them to a :class:`PredictionLog` writing
to the store. Rows go out in micro-batches and all at exit (SIGINT/SIGTERM); a process
killed with SIGKILL loses its unwritten batch (use the sink and its spool where that
matters).

With an ``http(s)://`` URL instead of a store it plays the agent's part whole: the two
events go to that URL (a log sink) as binary-mode CloudEvents with the agent's headers,
from a background thread behind a bounded queue. Unlike KServe's agent it retries a
failed send (the sink drops the duplicates), and it drains the queue at exit.
"""

from __future__ import annotations

import atexit
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from kfp_mlops.live.prediction_log import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    Flusher,
    InferenceEvent,
    PredictionLog,
    binary_headers,
)

log = logging.getLogger("kfp_mlops.serving")


class PredictionLogMiddleware:
    """Copy each answered inference request and its response into a prediction log."""

    def __init__(self, app: Any, prediction_log: PredictionLog | CloudEventSender,
                 model_version: str | None, model_in_path: Callable[[str], str | None],
                 source: str | None = None):
        self.app = app
        self.log = prediction_log
        self.model_in_path = model_in_path
        self.model_version = model_version
        self.source = source or socket.gethostname()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI event, recording inference routes."""
        model = self.model_in_path(scope.get("path", "")) if scope.get("type") == "http" \
            else None
        if model is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        arrived = datetime.now(timezone.utc)
        request_body = bytearray()
        response_body = bytearray()
        status = 0

        async def recording_receive() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message.get("type") == "http.request":
                request_body.extend(message.get("body", b""))
            return message

        async def recording_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status == 200:
                response_body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        if status != 200:
            return  # KServe's agent logs no response either; the request alone is noise
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        event_id = headers.get("ce-id") or str(uuid.uuid4())
        common = dict(id=event_id, source=self.source, model=model,
                      content_type=headers.get("content-type", "application/json"),
                      component="predictor", endpoint="default", version=self.model_version)
        try:
            self.log.accept(InferenceEvent(type=REQUEST_TYPE, time=arrived,
                                           data=bytes(request_body), **common))
            self.log.accept(InferenceEvent(type=RESPONSE_TYPE, time=datetime.now(timezone.utc),
                                           data=bytes(response_body), **common))
        except Exception:  # noqa: BLE001 - logging must never fail a served request
            log.exception("could not log request %s", event_id)


class CloudEventSender:
    """Post events to a sink URL as KServe's agent does, retrying failed sends."""

    def __init__(self, url: str, queue_size: int = 100, retries: int = 5,
                 timeout_s: float = 5.0):
        self.url = url
        self.retries = retries
        self.timeout_s = timeout_s
        self.dropped = 0
        self._queue: queue.Queue[InferenceEvent | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="cloudevent-sender",
                                        daemon=True)
        self._thread.start()

    def accept(self, event: InferenceEvent) -> bool:
        """Queue ``event``; a full queue drops it (counted) rather than stall serving."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            log.warning("prediction log queue full: dropped event %s", event.id)
            return False
        return True

    def _send(self, event: InferenceEvent) -> None:
        request = urllib.request.Request(self.url, data=event.data, method="POST",
                                         headers=binary_headers(event))
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    if 200 <= answer.status < 300:
                        return
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500:
                    log.warning("the log sink refused event %s: HTTP %d", event.id, exc.code)
                    return
            except OSError:
                pass
            time.sleep(min(2.0, 0.1 * 2**attempt))
        self.dropped += 1
        log.warning("could not deliver event %s to %s after %d tries", event.id, self.url,
                    self.retries + 1)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._send(event)

    def close(self, timeout_s: float = 30.0) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)


def install(app: Any, store_uri: str, model_name: str, model_version: str | None,
            features: list[Any], model_in_path: Callable[[str], str | None],
            max_rows: int = 1000, max_age_s: float = 5.0) -> PredictionLog | CloudEventSender:
    """Add the middleware to KServe's app and start the flusher; flushed again at exit.

    ``model_in_path`` tells an inference request's model from its path, None for any
    other route (the server's routes: :func:`kfp_mlops.serving.server.model_in_path`).

    ``store_uri`` may be a log sink's ``http(s)://`` URL: events are then sent there.
    ``features``: the model's :class:`~kfp_mlops.model.package.Feature` records (rows are
    written with their types; bare names write them as sent).
    """
    from kfp_mlops.storage import open_store

    if store_uri.startswith(("http://", "https://")):
        sender = CloudEventSender(store_uri)
        atexit.register(sender.close)
        app.add_middleware(PredictionLogMiddleware, prediction_log=sender,
                           model_version=model_version, model_in_path=model_in_path)
        log.info("sending inference log CloudEvents of %s to %s", model_name, store_uri)
        return sender

    store = open_store(store_uri)
    store.ensure_ready()
    prediction_log = PredictionLog(
        store, lambda model, version: features if model == model_name else [],
        max_rows=max_rows, max_age_s=max_age_s,
    )
    flusher = Flusher(prediction_log).start()
    atexit.register(flusher.stop)
    app.add_middleware(PredictionLogMiddleware, prediction_log=prediction_log,
                       model_version=model_version, model_in_path=model_in_path)
    log.info("logging predictions of %s to %s (micro-batches of %d rows or %.0f s)",
             model_name, store.uri, max_rows, max_age_s)
    return prediction_log
