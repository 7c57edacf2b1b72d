"""Start KServe's ``ModelServer`` with the suite's predictor.

``serve()`` is what ``kfp-mlops serve`` and ``python -m kfp_mlops.serving`` (the KServe
ClusterServingRuntime entry point) call. Beyond the stock server it can bind to one
host (tests and infra validation use 127.0.0.1), turns malformed V2 bodies into 400
instead of FastAPI's 422, and records per-request metrics on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kfp_mlops.serving.predictor import REQUEST_LATENCY, REQUESTS, SklearnFolderModel

DEFAULT_HOST = "0.0.0.0"  # a pod must listen on all interfaces; tests pass 127.0.0.1
_ROUTES = (
    ("v1", re.compile(r"^/v1/models/(?P<model>[^/:]+):predict$")),
    ("v2", re.compile(r"^/v2/models/(?P<model>[^/]+)(/versions/[^/]+)?/infer$")),
)


def _outcome(status: int) -> str:
    if status < 400:
        return "success"
    return "invalid_input" if status < 500 else "error"


class RequestMetricsMiddleware:
    """ASGI middleware counting inference requests by outcome and timing them.

    It sits outside KServe's routing so requests refused before the model is reached
    (malformed JSON, unknown model) are counted too. Unknown model names are labelled
    ``unknown`` to keep label cardinality bounded.
    """

    def __init__(self, app: Any, model_names: Iterable[str]):
        self.app = app
        self.model_names = frozenset(model_names)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI event, observing inference routes only."""
        route = self._route(scope) if scope.get("type") == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        protocol, model = route
        status = 500  # an exception escaping the app becomes a 500

        async def send_and_record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            REQUEST_LATENCY.labels(model, protocol).observe(time.perf_counter() - start)
            REQUESTS.labels(model, protocol, _outcome(status)).inc()

    def _route(self, scope: dict[str, Any]) -> tuple[str, str] | None:
        path = scope.get("path", "")
        for protocol, pattern in _ROUTES:
            match = pattern.match(path)
            if match:
                model = match.group("model")
                return protocol, model if model in self.model_names else "unknown"
        return None


def _install_app_hooks(model_names: Sequence[str], request_metrics: bool) -> None:
    """Add our middleware and 400 handler to KServe's (module-global) FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve.model_server import app

    async def invalid_body(_: Any, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in exc.errors()[:5]
            if "bytes" not in err.get("loc", ())  # the raw-bytes alternative is noise
        )
        return JSONResponse(
            status_code=400,
            content={"error": f"malformed V2 request body ({problems}); see docs/serving.md"},
        )

    app.add_exception_handler(RequestValidationError, invalid_body)
    if request_metrics:
        app.add_middleware(RequestMetricsMiddleware, model_names=list(model_names))


def start_model_server(
    models: Sequence[Any],
    http_port: int = 8080,
    host: str = DEFAULT_HOST,
    request_metrics: bool = True,
    enable_latency_logging: bool = False,
) -> None:
    """Run KServe's REST server for ``models`` (loaded ``kserve.Model``s) until stopped.

    Blocks; SIGTERM/SIGINT stop it. gRPC is not started: the suite's runtime only
    declares the HTTP port.
    """
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    class _HostBoundModelServer(kserve.ModelServer):  # type: ignore[misc]
        """Stock ModelServer whose REST server binds ``host`` instead of 0.0.0.0."""

        def start(self, models: list[Any]) -> None:
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = RESTServer(
                FASTAPI_APP_IMPORT_STRING,
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                access_log_format=self.access_log_format,
                workers=1,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
            )
            self._rest_server.config.host = host
            self.servers.append(self._rest_server.start())
            self.setup_event_loop()
            self.register_signal_handler()
            asyncio.run(self._serve())

    _install_app_hooks([m.name for m in models], request_metrics)
    server = _HostBoundModelServer(
        http_port=http_port,
        enable_grpc=False,
        workers=1,
        enable_latency_logging=enable_latency_logging,
        grace_period=5,
    )
    server.start(list(models))


def serve(
    model_dir: str | Path,
    model_name: str = "model",
    http_port: int = 8080,
    host: str = DEFAULT_HOST,
) -> None:
    """Serve the model version folder ``model_dir`` as ``model_name`` until stopped.

    Raises ``ModelIntegrityError`` before binding any port if the folder is broken
    (no or several model files, sha256 mismatch, other scikit-learn version).
    """
    predictor = SklearnFolderModel(model_name, model_dir)
    predictor.load()
    start_model_server([predictor], http_port=http_port, host=host)
