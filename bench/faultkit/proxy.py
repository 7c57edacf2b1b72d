"""A fault-injecting HTTP proxy on 127.0.0.1, in front of the S3 test server.

Clients (the minio client behind ``S3Store``) talk to the proxy as to S3. The proxy
reads each HTTP/1.1 request off the client's connection (request line, headers, a
``Content-Length`` body) and relays it to the upstream server on a connection of its
own, unless a :class:`Fault` is armed that matches it. Then, by ``Fault.action``:

- ``drop_before``: close the client's connection; the server never saw the request;
- ``drop_after``: relay the request, then close the client's connection without the
  answer; the server applied it and the client cannot know;
- ``delay``: relay it and hold the answer back ``Fault.delay`` seconds (longer than the
  client's read timeout: the client gives up and retries);
- ``respond``: answer ``Fault.status`` with an S3 error document (``Fault.code``)
  without relaying: a 503 ``SlowDown``, a 403 ``AccessDenied``...

A fault lets ``skip`` matching requests through first, then hits ``times`` of them
(``None``: every one until :meth:`FaultProxy.clear`, i.e. an outage). Every request is
recorded in :attr:`FaultProxy.trace` as ``(method, path, action)``, so a test can list
the steps of an operation and then fail each one in turn.

Loopback only; a bounded helper for tests and ``bench/faults.py``.
"""

from __future__ import annotations

import http.client
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

ACTIONS = ("drop_before", "drop_after", "delay", "respond")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


@dataclass
class Fault:
    """What to do to which requests."""

    action: str
    skip: int = 0  # matching requests let through before the fault starts
    times: int | None = 1  # matching requests hit; None: all of them until cleared
    delay: float = 2.0  # for "delay"
    status: int = 503  # for "respond"
    code: str = "SlowDown"  # for "respond"
    match: Callable[[str, str], bool] | None = None  # (method, path) -> counts?

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; use one of {ACTIONS}")


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class FaultProxy:
    """Relay HTTP requests from ``127.0.0.1:port`` to ``upstream``; inject faults."""

    def __init__(self, upstream: str):
        parsed = urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._seen = 0  # matching requests since the fault was armed
        self.trace: list[tuple[str, str, str]] = []
        self.requests = 0
        self.faults_injected = 0
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ control

    def start(self) -> FaultProxy:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; open client connections die with their threads."""
        self._server.shutdown()
        self._server.server_close()

    def inject(self, fault: Fault) -> None:
        """Arm ``fault`` (replacing any armed one); its counts start now."""
        with self._lock:
            self._fault = fault
            self._seen = 0

    def clear(self) -> None:
        """Disarm: every request passes again."""
        with self._lock:
            self._fault = None

    def reset_trace(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.trace = []

    # ------------------------------------------------------------------ serving

    def _decide(self, request: _Request) -> Fault | None:
        path = request.target.split("?", 1)[0]
        with self._lock:
            self.requests += 1
            fault = self._fault
            hit = None
            if fault is not None and (fault.match is None or fault.match(request.method, path)):
                index = self._seen
                self._seen += 1
                in_window = index >= fault.skip and (
                    fault.times is None or index < fault.skip + fault.times
                )
                if in_window:
                    hit = fault
                    self.faults_injected += 1
            self.trace.append((request.method, request.target, hit.action if hit else "pass"))
        return hit

    def _serve(self, client: socket.socket, rfile: BinaryIO) -> None:
        upstream: http.client.HTTPConnection | None = None
        try:
            while True:
                request = _read_request(rfile)
                if request is None:
                    return
                fault = self._decide(request)
                if fault is not None and fault.action == "drop_before":
                    _abort(client)
                    return
                if fault is not None and fault.action == "respond":
                    client.sendall(_error_response(fault.status, fault.code))
                    continue
                if upstream is None:
                    upstream = http.client.HTTPConnection(
                        self.upstream_host, self.upstream_port, timeout=30
                    )
                try:
                    answer = _relay(upstream, request)
                except (OSError, http.client.HTTPException):
                    upstream.close()
                    upstream = None
                    _abort(client)
                    return
                if fault is not None and fault.action == "drop_after":
                    _abort(client)
                    return
                if fault is not None and fault.action == "delay":
                    time.sleep(fault.delay)
                client.sendall(answer)
                if (request.header("connection") or "").lower() == "close":
                    return
        except OSError:
            return  # the client went away
        finally:
            if upstream is not None:
                upstream.close()


def _read_request(rfile: BinaryIO) -> _Request | None:
    line = rfile.readline(65537)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(65537)
    if not line:
        return None
    method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers = []
    while True:
        raw = rfile.readline(65537)
        if raw in (b"\r\n", b"\n", b""):
            break
        key, _, value = raw.decode("latin-1").partition(":")
        headers.append((key.strip(), value.strip()))
    request = _Request(method, target, version, headers, b"")
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        raise OSError("chunked request bodies are not supported by the fault proxy")
    length = int(request.header("content-length") or 0)
    request.body = rfile.read(length) if length else b""
    return request


def _relay(upstream: http.client.HTTPConnection, request: _Request) -> bytes:
    """Send ``request`` upstream; return the whole answer as bytes for the client."""
    upstream.putrequest(request.method, request.target, skip_host=True,
                        skip_accept_encoding=True)
    for key, value in request.headers:
        if key.lower() not in _HOP_BY_HOP:
            upstream.putheader(key, value)
    upstream.endheaders(request.body or None)
    response = upstream.getresponse()
    body = response.read()
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    for key, value in response.getheaders():
        if key.lower() in _HOP_BY_HOP or key.lower() == "content-length":
            continue
        lines.append(f"{key}: {value}")
    if request.method == "HEAD":
        length = response.getheader("content-length")
        if length is not None:
            lines.append(f"Content-Length: {length}")
    else:
        lines.append(f"Content-Length: {len(body)}")
    if response.will_close:
        upstream.close()
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (b"" if request.method == "HEAD" else body)


def _error_response(status: int, code: str) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected by the fault proxy</Message>"
        "<Resource>/</Resource><RequestId>fault</RequestId></Error>"
    ).encode()
    reason = http.client.responses.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def _abort(client: socket.socket) -> None:
    """Close the client's connection at once (RST where the platform allows)."""
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    client.close()
