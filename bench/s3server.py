"""A real S3-compatible HTTP server on 127.0.0.1 for tests: moto's standalone server.

``s3_server()`` starts ``moto.server.ThreadedMotoServer`` on a free loopback port,
creates a fresh bucket, points the variables KServe's storage initializer reads
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``) at it, and restores them and stops the server on exit.
The minio client then talks to it over the wire exactly as to MinIO or AWS S3.

One deviation from moto as shipped: moto checks ``If-None-Match`` and stores the object
in two steps, so two racing conditional PUTs can both succeed; AWS S3 and MinIO make
that check atomic. The helper serialises object writes so the double answers like the
real servers do (see ``_AtomicWrites``).

Every request here is an S3 request, so the helper also resolves moto's S3 application
once and calls it directly: moto's dispatcher otherwise looks for the backend of each
request under a global lock, at a cost of ~180 ``stat`` calls a request (see
``_S3Only``), which made the server the bottleneck of the race tests.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.server import ThreadedMotoServer

ENV_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@dataclass
class S3Server:
    """Where the running server is and which bucket the test owns."""

    endpoint: str  # http://127.0.0.1:PORT
    bucket: str

    def uri(self, prefix: str = "") -> str:
        """``s3://bucket/prefix`` for :func:`kfp_mlops.storage.open_store`."""
        return f"s3://{self.bucket}/{prefix}".rstrip("/")


class _S3Only:
    """WSGI app: moto's S3 application, found once by its dispatcher and then reused."""

    def __init__(self, dispatcher: Any):
        self.dispatcher = dispatcher
        self.app: Callable[..., Iterable[bytes]] | None = None
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.app is None:
            with self.lock:
                if self.app is None:
                    self.app = self.dispatcher.get_application(environ)
        return self.app(environ, start_response)


class _AtomicWrites:
    """WSGI middleware running object writes one at a time (as S3 applies them)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") not in ("PUT", "POST", "DELETE"):
            return self.app(environ, start_response)
        with self.lock:
            # Materialise the body inside the lock: the write happens while iterating.
            return list(self.app(environ, start_response))


class _Authorize:
    """WSGI middleware refusing, as the S3 server would, what ``authorize`` says no to.

    ``authorize(method, path, query)`` returns None to let the request through, else the
    reason it is refused; the answer is then S3's 403 ``AccessDenied`` error document.
    The bucket itself is created before this is installed.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 authorize: Callable[[str, str, str], str | None]):
        self.app = app
        self.authorize = authorize

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from urllib.parse import unquote

        method = environ.get("REQUEST_METHOD", "GET")
        reason = self.authorize(method, unquote(environ.get("PATH_INFO", "")),
                                environ.get("QUERY_STRING", ""))
        if reason is None:
            return self.app(environ, start_response)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>Access Denied: {reason}</Message><Resource>{environ.get('PATH_INFO')}"
            "</Resource><RequestId>test</RequestId></Error>"
        ).encode()
        start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                         ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]


@contextmanager
def s3_server(
    bucket: str | None = None,
    authorize: Callable[[str, str, str], str | None] | None = None,
) -> Iterator[S3Server]:
    """Run moto's S3 server on 127.0.0.1 with a new bucket and the AWS_* variables set.

    ``authorize``: judge every request after the bucket exists (see ``_Authorize``), to
    play a server whose key is scoped by a policy.
    """
    import minio

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # One access-log line per request would drown a failing test's output.
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)
    server.start()
    saved = {name: os.environ.get(name) for name in ENV_VARS}
    try:
        # ThreadedMotoServer has no hook for middleware; its werkzeug server reads .app
        # on every request, so wrapping it after start applies to all requests.
        wsgi = server._server
        assert wsgi is not None
        wsgi.app = _AtomicWrites(_S3Only(wsgi.app))
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        name = bucket or f"test-{uuid.uuid4().hex[:12]}"
        client = minio.Minio(
            f"{host}:{port}", access_key="testing", secret_key="testing",
            secure=False, region="us-east-1",
        )
        client.make_bucket(name)
        if authorize is not None:
            wsgi.app = _Authorize(wsgi.app, authorize)
        yield S3Server(endpoint=endpoint, bucket=name)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
        access_log.setLevel(level)
