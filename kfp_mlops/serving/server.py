"""Start KServe's ``ModelServer`` with the suite's predictor.

``serve()`` is what ``kfp-mlops serve`` and ``python -m kfp_mlops.serving`` (the KServe
ClusterServingRuntime entry point) call. Beyond the stock server it:

- binds one host (tests and infra validation use 127.0.0.1);
- refuses request bodies over a size limit with HTTP 413 before reading them
  (``--max_body_size`` / ``KFP_MLOPS_MAX_BODY_SIZE``, default 16 MiB);
- answers every client mistake with a 4xx and logs it in one line (no traceback),
  counted in ``kfp_mlops_rejected_requests_total``; malformed V2 bodies are 400, not
  FastAPI's 422;
- writes its logs from a background thread, so a slow or full log pipe never stalls
  the event loop (records beyond a bounded queue are dropped and counted);
- records per-request metrics on ``/metrics``.

Scoring runs off the event loop (``SklearnFolderModel.predict``), so health probes and
small requests are answered while a large one is scored.

It relies on a few KServe names that are not public API; :func:`kserve_api_problems`
lists them and the start refuses, naming them, if the installed KServe lacks one.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import logging
import logging.handlers
import os
import queue
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from kfp_mlops.serving.predictor import (
    REJECTED,
    REQUEST_LATENCY,
    REQUESTS,
    SklearnFolderModel,
)

DEFAULT_HOST = "0.0.0.0"  # a pod must listen on all interfaces; tests pass 127.0.0.1
MAX_BODY_ENV = "KFP_MLOPS_MAX_BODY_SIZE"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
LOG_QUEUE_RECORDS = 10_000
_ROUTES = (
    ("v1", re.compile(r"^/v1/models/(?P<model>[^/:]+):predict$")),
    ("v2", re.compile(r"^/v2/models/(?P<model>[^/]+)(/versions/[^/]+)?/infer$")),
)
_REASON_CHARS = 300


def model_in_path(path: str) -> str | None:
    """The model an inference route (V1 ``:predict``, V2 ``/infer``) names; None elsewhere."""
    for _, pattern in _ROUTES:
        match = pattern.match(path)
        if match:
            return match.group("model")
    return None


log = logging.getLogger("kfp_mlops.serving")

LOG_RECORDS_DROPPED = Counter(
    "kfp_mlops_log_records_dropped",
    "Log records dropped because the log sink fell behind (the server did not wait for it).",
)

# ---------------------------------------------------------------- KServe's private names

# What ``_HostBoundModelServer.start`` (an override of ModelServer.start) uses of the
# ModelServer: KServe documents none of it. Methods, checked on the class:
MODEL_SERVER_METHODS = (
    "_register_and_check_atleast_one_model_is_ready",
    "_serve",
    "setup_event_loop",
    "register_signal_handler",
)
# and attributes set in ModelServer.__init__, checked on an instance:
MODEL_SERVER_ATTRIBUTES = (
    "_rest_server",
    "dataplane",
    "model_repository_extension",
    "http_port",
    "access_log_format",
    "grace_period",
    "event_loop",
    "timeout_keep_alive",
    "servers",
)
# RESTServer(...) keyword arguments passed, and what is used of the instance.
REST_SERVER_PARAMS = (
    "app",
    "data_plane",
    "model_repository_extension",
    "http_port",
    "access_log_format",
    "workers",
    "grace_period",
    "event_loop",
    "timeout_keep_alive",
)
REST_SERVER_NAMES = ("create_application", "start")


def kserve_api_problems(model_server: Any = None) -> list[str]:
    """What the installed KServe lacks of the names this module relies on; [] if none.

    ``model_server`` (a ``kserve.ModelServer``) lets the instance attributes be checked
    too; without it only classes and modules are. Each problem names the KServe name.
    """
    import kserve
    import kserve.model_server
    from kserve.constants import constants
    from kserve.protocol.infer_type import InferInput
    from kserve.protocol.rest.server import RESTServer

    problems = [
        f"kserve.ModelServer.{name}()"
        for name in MODEL_SERVER_METHODS
        if not callable(getattr(kserve.ModelServer, name, None))
    ]
    if model_server is not None:
        problems += [
            f"kserve.ModelServer().{name}"
            for name in MODEL_SERVER_ATTRIBUTES
            if not hasattr(model_server, name)
        ]
    params = inspect.signature(RESTServer.__init__).parameters
    problems += [
        f"kserve.protocol.rest.server.RESTServer({name}=...)"
        for name in REST_SERVER_PARAMS
        if name not in params
    ]
    problems += [
        f"kserve.protocol.rest.server.RESTServer.{name}"
        for name in REST_SERVER_NAMES
        if not callable(getattr(RESTServer, name, None))
    ]
    if not hasattr(constants, "FASTAPI_APP_IMPORT_STRING"):
        problems.append("kserve.constants.constants.FASTAPI_APP_IMPORT_STRING")
    if not hasattr(kserve.model_server, "app"):
        problems.append("kserve.model_server.app (the module-global FastAPI app)")
    problems += [
        f"kserve.protocol.infer_type.InferInput.{name}"
        for name in ("data", "as_numpy", "shape", "datatype", "name")
        if not hasattr(InferInput, name)
    ]
    return problems


def _refuse_unknown_kserve(problems: list[str]) -> None:
    if problems:
        from importlib.metadata import version

        raise RuntimeError(
            f"kserve {version('kserve')} lacks names kfp-mlops' server relies on: "
            f"{', '.join(problems)}; install the kserve version pinned in pyproject.toml "
            "(the serving extra)"
        )


# ---------------------------------------------------------------- sizes


def parse_size(text: str | int) -> int:
    """Bytes in ``text``: ``16777216``, ``16MiB``, ``512KiB``, ``1GiB`` (or K/M/G, binary)."""
    if isinstance(text, int):
        size = text
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
        if not match:
            raise ValueError(
                f"{text!r} is not a size; write bytes or a number with KiB, MiB or GiB "
                "(e.g. 16MiB)"
            )
        scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2).upper()]
        size = int(match.group(1)) * scale
    if size <= 0:
        raise ValueError(f"the body size limit must be positive, got {text!r}")
    return size


def max_body_bytes(value: str | int | None = None) -> int:
    """The request body limit: ``value``, else ``$KFP_MLOPS_MAX_BODY_SIZE``, else 16 MiB."""
    if value is not None:
        return parse_size(value)
    from_env = os.environ.get(MAX_BODY_ENV, "").strip()
    if from_env:
        try:
            return parse_size(from_env)
        except ValueError as exc:
            raise ValueError(f"{MAX_BODY_ENV}: {exc}") from None
    return DEFAULT_MAX_BODY_BYTES


def _human(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


# ---------------------------------------------------------------- ASGI middleware


def _outcome(status: int) -> str:
    if status < 400:
        return "success"
    return "invalid_input" if status < 500 else "error"


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class _BodyTooLarge(Exception):
    """Raised into the app by the body-limit receive() once the limit is passed."""


class BodyLimitMiddleware:
    """Answer 413 to a request whose body is larger than ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before any of the body is
    read (uvicorn discards the rest). A chunked body is counted as it is read and the
    request refused when it passes the limit, whatever the app made of the error.
    """

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI event."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit():
            if int(declared) > self.max_bytes:
                await self._refuse(send, int(declared))
                return
        received = 0
        too_large = False
        refused = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, too_large
            message: dict[str, Any] = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal refused
            if too_large:  # the app's own answer to the aborted read is replaced
                if not refused:
                    refused = True
                    await self._refuse(send, None)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not refused:
                refused = True
                await self._refuse(send, None)

    async def _refuse(self, send: Any, declared: int | None) -> None:
        size = f"is {declared} bytes" if declared is not None else "is larger than that"
        message = (
            f"this server accepts request bodies of at most {_human(self.max_bytes)} "
            f"({self.max_bytes} bytes) and this one {size}. Send fewer rows per request, "
            f"or raise the limit with --max_body_size or {MAX_BODY_ENV}"
        )
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestMetricsMiddleware:
    """ASGI middleware counting inference requests by outcome and timing them.

    It sits outside KServe's routing so requests refused before the model is reached
    (malformed JSON, unknown model, body too large) are counted too. Unknown model names
    are labelled ``unknown`` to keep label cardinality bounded. Every 4xx answer, on any
    route, is logged here in one line with the reason from its body.
    """

    def __init__(self, app: Any, model_names: Iterable[str], record_metrics: bool = True):
        self.app = app
        self.model_names = frozenset(model_names)
        self.record_metrics = record_metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one ASGI event, observing inference routes only."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        status = 500  # an exception escaping the app becomes a 500
        error_body = bytearray()

        async def send_and_record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and 400 <= status < 500:
                error_body.extend(message.get("body", b"")[: 4096 - len(error_body)])
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            if route is not None and self.record_metrics:
                protocol, model = route
                REQUEST_LATENCY.labels(model, protocol).observe(time.perf_counter() - start)
                REQUESTS.labels(model, protocol, _outcome(status)).inc()
                if 400 <= status < 500:
                    REJECTED.labels(model, protocol, str(status)).inc()
            if 400 <= status < 500:
                log.warning(
                    "rejected %s %s: %d %s",
                    scope.get("method", ""),
                    scope.get("path", ""),
                    status,
                    _reason(bytes(error_body)),
                )

    def _route(self, scope: dict[str, Any]) -> tuple[str, str] | None:
        path = scope.get("path", "")
        for protocol, pattern in _ROUTES:
            match = pattern.match(path)
            if match:
                model = match.group("model")
                return protocol, model if model in self.model_names else "unknown"
        return None


def _reason(body: bytes) -> str:
    """The ``error`` (or FastAPI ``detail``) of a JSON error body, on one short line."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            text = str(parsed.get("error", parsed.get("detail", text)))
    except ValueError:
        pass
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


# ---------------------------------------------------------------- exception handlers


def _quiet_handlers() -> dict[type[BaseException], Any]:
    """JSON answers for KServe's expected errors, without KServe's traceback per request.

    The 4xx ones are logged once by :class:`RequestMetricsMiddleware`; genuine server
    errors (``InferenceError``, any other exception) keep KServe's handler and traceback.
    """
    from fastapi.responses import JSONResponse
    from kserve import errors

    def answer(status: int) -> Any:
        async def handler(_: Any, exc: BaseException) -> JSONResponse:
            if status >= 500:
                log.warning("answered %d: %s", status, " ".join(str(exc).split()))
            return JSONResponse(status_code=status, content={"error": str(exc)})

        return handler

    return {
        errors.InvalidInput: answer(400),
        errors.ModelNotFound: answer(404),
        errors.ModelNotReady: answer(503),
        errors.ServerNotLive: answer(503),
        errors.ServerNotReady: answer(503),
        errors.UnsupportedProtocol: answer(501),
        NotImplementedError: answer(501),
    }


def _install_app_hooks(
    model_names: Sequence[str], request_metrics: bool, max_body: int
) -> None:
    """Add our middleware and 400 handler to KServe's (module-global) FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve.model_server import app
    from starlette.exceptions import HTTPException as StarletteHTTPException

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

    async def http_error(_: Any, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (e.g. an unparsable V2 body) in the {"error": ...} shape.
        return JSONResponse(
            status_code=exc.status_code, content={"error": str(exc.detail)}, headers=exc.headers
        )

    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Added last = outermost: the metrics middleware sees the body limit's 413s.
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body)
    app.add_middleware(
        RequestMetricsMiddleware, model_names=list(model_names), record_metrics=request_metrics
    )


# ---------------------------------------------------------------- logging


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hand records to the writer thread; never wait for it (drop and count instead)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Same process: the real handler formats the record (its args intact, which
        # uvicorn's access formatter needs) in the writer thread.
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            LOG_RECORDS_DROPPED.inc()


def _log_off_the_loop(names: Sequence[str]) -> None:
    """Move the handlers of loggers ``names`` behind one bounded queue and thread.

    A log write that blocks (a full pipe, a slow container log driver) then delays
    only the writer thread, never the event loop that answers requests and probes.
    """
    for name in names:
        logger = logging.getLogger(name)
        handlers = [h for h in logger.handlers if not isinstance(h, _DroppingQueueHandler)]
        if not handlers:
            continue
        records: queue.Queue[logging.LogRecord] = queue.Queue(LOG_QUEUE_RECORDS)
        listener = logging.handlers.QueueListener(
            records, *handlers, respect_handler_level=True
        )
        for handler in handlers:
            logger.removeHandler(handler)
        logger.addHandler(_DroppingQueueHandler(records))
        listener.start()
        atexit.register(listener.stop)


def _configure_logging(enable_latency_logging: bool) -> None:
    if not log.handlers:
        from kserve.logging import KSERVE_LOGGER_DATE_FORMAT, KSERVE_LOGGER_FORMAT

        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(KSERVE_LOGGER_FORMAT, KSERVE_LOGGER_DATE_FORMAT))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    if not enable_latency_logging:
        # KServe's timing middleware logs two lines per request; the request histogram
        # on /metrics carries the same information.
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    _log_off_the_loop(["kserve", "kserve.trace", "uvicorn", "uvicorn.access", log.name])


# ---------------------------------------------------------------- the server


def start_model_server(
    models: Sequence[Any],
    http_port: int = 8080,
    host: str = DEFAULT_HOST,
    request_metrics: bool = True,
    enable_latency_logging: bool = False,
    max_body: int | str | None = None,
    log_to: str | None = None,
    model_version: str | None = None,
) -> None:
    """Run KServe's REST server for ``models`` (loaded ``kserve.Model``s) until stopped.

    Blocks; SIGTERM/SIGINT stop it. gRPC is not started: the suite's runtime only
    declares the HTTP port. ``max_body``: see :func:`max_body_bytes`. ``log_to``: a store
    URI that every answered request and its predictions are logged to, as
    ``model_version`` (:mod:`kfp_mlops.live.log_capture`).
    """
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    _refuse_unknown_kserve(kserve_api_problems())
    limit = max_body_bytes(max_body)
    quiet = _quiet_handlers()

    class _QuietRESTServer(RESTServer):  # type: ignore[misc]
        """KServe's REST server with our handlers for expected errors (no tracebacks)."""

        def create_application(self) -> None:
            super().create_application()
            for exc_class, handler in quiet.items():
                app.add_exception_handler(exc_class, handler)

    class _HostBoundModelServer(kserve.ModelServer):  # type: ignore[misc]
        """Stock ModelServer whose REST server binds ``host`` instead of 0.0.0.0."""

        def start(self, models: list[Any]) -> None:
            _refuse_unknown_kserve(kserve_api_problems(self))
            self._register_and_check_atleast_one_model_is_ready(models)
            self._rest_server = _QuietRESTServer(
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

    if log_to:
        from kfp_mlops.live.log_capture import install

        for model in models:  # innermost middleware: it sees what the model answered
            install(app, log_to, model.name, model_version,
                    list(getattr(model, "features", [])),  # typed: rows as the model read them
                    model_in_path)
    _install_app_hooks([m.name for m in models], request_metrics, limit)
    server = _HostBoundModelServer(
        http_port=http_port,
        enable_grpc=False,
        workers=1,
        enable_latency_logging=enable_latency_logging,
        grace_period=5,
    )
    _configure_logging(enable_latency_logging)
    log.info("request bodies over %s are refused with 413", _human(limit))
    server.start(list(models))


def serve(
    model_dir: str | Path,
    model_name: str = "model",
    http_port: int = 8080,
    host: str = DEFAULT_HOST,
    max_body: int | str | None = None,
    ignore_unknown_columns: bool | None = None,
    log_to: str | None = None,
    model_version: str | None = None,
) -> None:
    """Serve the model version folder ``model_dir`` as ``model_name`` until stopped.

    ``log_to``: log every answered request to this store (``predictions/`` layout) as
    ``model_version`` (default: the version in the folder's metadata, if any).

    ``ignore_unknown_columns``: ignore request fields that are neither features, the
    target nor dropped columns, instead of refusing them (None: the
    ``KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS`` environment variable decides).

    Raises ``ModelIntegrityError`` before binding any port if the folder is broken
    (no or several model files, no or a wrong sha256, unsigned or wrongly signed with a
    signing key configured, other scikit-learn version), and ``ValueError`` for a
    malformed body size limit.
    """
    limit = max_body_bytes(max_body)
    predictor = SklearnFolderModel(
        model_name, model_dir, ignore_unknown_columns=ignore_unknown_columns
    )
    predictor.load()
    if log_to and model_version is None and predictor.metadata is not None:
        found = getattr(predictor.metadata, "version", None)
        model_version = str(found) if found else None
    start_model_server([predictor], http_port=http_port, host=host, max_body=limit,
                       log_to=log_to, model_version=model_version)
