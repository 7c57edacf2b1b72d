"""A small Docker Engine API server for tests: containers that exit as told, no processes.

It answers the calls ``docker.from_env()`` and ``containers.run(detach=True)`` make (ping,
version, info, image list and inspect, create, inspect, start, logs, wait, remove), records each
create body, and behaves as Podman 4.3's compatible service does with ``AutoRemove``: the
container is gone as soon as it exited, so reading its logs or status afterwards is a
404. Each container "runs" by exiting at once with ``exit_code`` after writing ``logs``.
Point the SDK at it with ``DOCKER_HOST=tcp://127.0.0.1:PORT``.
"""

from __future__ import annotations

import json
import re
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_VERSIONED = re.compile(r"^/v[0-9.]+(/.*)$")


class FakeEngine:
    """The engine's state: what was created, what exists, how containers exit."""

    def __init__(self, exit_code: int = 0, logs: bytes = b"", images: tuple[str, ...] = ()):
        self.refuse: str | None = None  # answer creates with this 500 message
        self.follow_cut = 0  # a followed log stream ends after this many bytes (0: all)
        self.exit_code = exit_code
        self.logs = logs
        self.images = set(images)
        self.created: list[dict[str, Any]] = []
        self.removed: list[str] = []
        self.containers: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """``tcp://127.0.0.1:PORT``, the DOCKER_HOST of this engine."""
        assert self._server is not None
        return f"tcp://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeEngine:
        """Serve on a free loopback port in a daemon thread."""
        engine = self

        class Handler(_Handler):
            state = engine

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    state: FakeEngine
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _path(self) -> str:
        path = self.path.split("?", 1)[0]
        match = _VERSIONED.match(path)
        return match.group(1) if match else path

    def _send(self, status: int, body: Any = None, content_type: str = "application/json",
              raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _missing(self, what: str) -> None:
        self._send(404, {"message": f"no such container: {what}"})

    def do_GET(self) -> None:  # noqa: D102
        path, state = self._path(), self.state
        if path == "/_ping":
            return self._send(200, raw=b"OK", content_type="text/plain")
        if path == "/version":
            return self._send(200, {"ApiVersion": "1.41", "Version": "4.3.1",
                                    "MinAPIVersion": "1.24"})
        if path == "/info":
            return self._send(200, {"SecurityOptions": []})
        ids = {f"sha256:{n:064d}": image for n, image in enumerate(sorted(state.images))}
        if path == "/images/json":
            return self._send(200, [{"Id": ident, "RepoTags": [image], "RepoDigests": []}
                                    for ident, image in ids.items()])
        if match := re.match(r"^/images/(.+)/json$", path):
            image = ids.get(match.group(1), match.group(1))
            if image in state.images:
                ident = next(i for i, name in ids.items() if name == image)
                return self._send(200, {"Id": ident, "RepoTags": [image], "RepoDigests": []})
            return self._send(404, {"message": f"{match.group(1)}: image not known"})
        if match := re.match(r"^/containers/([^/]+)/json$", path):
            found = state.containers.get(match.group(1))
            if found is None:
                return self._missing(match.group(1))
            return self._send(200, {"Id": match.group(1), "Config": {"Tty": False}})
        if match := re.match(r"^/containers/([^/]+)/logs$", path):
            if match.group(1) not in state.containers:
                return self._missing(match.group(1))
            logs = state.logs
            if state.follow_cut and "follow=1" in self.path:
                logs = logs[:state.follow_cut]
            frame = struct.pack(">BxxxL", 1, len(logs)) + logs
            return self._send(200, raw=frame if logs else b"",
                              content_type="application/vnd.docker.raw-stream")
        return self._send(404, {"message": f"not implemented here: GET {path}"})

    def do_POST(self) -> None:  # noqa: D102
        path, state = self._path(), self.state
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if path == "/images/create":  # a pull: nothing can be pulled here
            return self._send(404, {"message": "no registry in this test"})
        if path == "/containers/create":
            if state.refuse:
                return self._send(500, {"message": state.refuse})
            with state.lock:
                ident = f"c{len(state.created):04d}"
                state.created.append(body)
                state.containers[ident] = body
            return self._send(201, {"Id": ident, "Warnings": []})
        if match := re.match(r"^/containers/([^/]+)/start$", path):
            ident = match.group(1)
            if ident not in state.containers:
                return self._missing(ident)
            if state.containers[ident].get("HostConfig", {}).get("AutoRemove"):
                del state.containers[ident]  # exited at once, removed as Podman does
            return self._send(204)
        if match := re.match(r"^/containers/([^/]+)/wait$", path):
            if match.group(1) not in state.containers:
                return self._missing(match.group(1))
            return self._send(200, {"StatusCode": state.exit_code, "Error": None})
        return self._send(404, {"message": f"not implemented here: POST {path}"})

    def do_DELETE(self) -> None:  # noqa: D102
        match = re.match(r"^/containers/([^/]+)$", self._path())
        if not match or match.group(1) not in self.state.containers:
            return self._missing(self._path())
        del self.state.containers[match.group(1)]
        self.state.removed.append(match.group(1))
        return self._send(204)
