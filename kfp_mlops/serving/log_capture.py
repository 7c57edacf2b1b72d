"""``kfp-mlops serve --log-to STORE``: the ModelServer logs what it served, without a sink.

On a cluster KServe's agent sidecar copies each request and response to the logger URL
as CloudEvents (:mod:`kfp_mlops.serving.prediction_log`). Locally there is no agent, so
this ASGI middleware does its job in-process: for every inference request answered 200
it builds the same two events the agent would (same id for both: the request's
``Ce-Id`` header, else a new UUID; ``time`` when the request came and when the answer
left; the request's content type) and hands them to a :class:`PredictionLog` writing
to the store. Rows go out in micro-batches and all at exit (SIGINT/SIGTERM); a process
killed with SIGKILL loses its unwritten batch (use the sink and its spool where that
matters).
"""

from __future__ import annotations

import atexit
import logging
import socket
import uuid
from datetime import datetime, timezone
from typing import Any

from kfp_mlops.serving.prediction_log import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    Flusher,
    InferenceEvent,
    PredictionLog,
)

log = logging.getLogger("kfp_mlops.serving")


def _route_model(path: str) -> str | None:
    from kfp_mlops.serving.server import _ROUTES

    for _, pattern in _ROUTES:
        match = pattern.match(path)
        if match:
            return match.group("model")
    return None


class PredictionLogMiddleware:
    """Copy each answered inference request and its response into a prediction log."""

    def __init__(self, app: Any, prediction_log: PredictionLog, model_version: str | None,
                 source: str | None = None):
        self.app = app
        self.log = prediction_log
        self.model_version = model_version
        self.source = source or socket.gethostname()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI event, recording inference routes."""
        model = _route_model(scope.get("path", "")) if scope.get("type") == "http" else None
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


def install(app: Any, store_uri: str, model_name: str, model_version: str | None,
            features: list[str], max_rows: int = 1000, max_age_s: float = 5.0) -> PredictionLog:
    """Add the middleware to KServe's app and start the flusher; flushed again at exit."""
    from kfp_mlops.storage import open_store

    store = open_store(store_uri)
    store.ensure_ready()
    prediction_log = PredictionLog(
        store, lambda model, version: features if model == model_name else [],
        max_rows=max_rows, max_age_s=max_age_s,
    )
    flusher = Flusher(prediction_log).start()
    atexit.register(flusher.stop)
    app.add_middleware(PredictionLogMiddleware, prediction_log=prediction_log,
                       model_version=model_version)
    log.info("logging predictions of %s to %s (micro-batches of %d rows or %.0f s)",
             model_name, store.uri, max_rows, max_age_s)
    return prediction_log
