"""The suite's model server as a child process on 127.0.0.1: start, wait until ready, stop.

Light on purpose (no numpy, pandas or KServe here): the infra-validation task starts
the server first, so that it imports KServe and loads the model while the task itself
is still importing and reading rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.extras import require_kserve


class ServerStartError(KfpMlopsError, RuntimeError):
    """The model server exited or did not become ready in time."""


@dataclass
class ServerProcess:
    """A running ``python -m kfp_mlops.serving`` subprocess."""

    process: subprocess.Popen[bytes]
    base_url: str
    model_name: str
    log_path: Path
    started_at: float = 0.0
    startup_s: float = 0.0

    def log_tail(self, chars: int = 2000) -> str:
        """Return the end of the server's combined stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float) -> None:
        """Poll the V2 readiness route; raise ``ServerStartError`` on exit or timeout."""
        import httpx

        ready_url = f"{self.base_url}/v2/models/{self.model_name}/ready"
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise ServerStartError(
                        f"model server exited with code {self.process.returncode} before it "
                        f"was ready:\n{self.log_tail()}"
                    )
                try:
                    if client.get(ready_url).status_code == 200:
                        break
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() - self.started_at > timeout_s:
                    raise ServerStartError(
                        f"model server not ready after {timeout_s:.0f}s; raise timeout_s if "
                        f"the model is large:\n{self.log_tail()}"
                    )
                # Each try is a refused connection on loopback (microseconds): a short
                # interval starts the requests sooner (0.05 s cost 25 ms a start on average).
                time.sleep(0.01)
        self.startup_s = time.monotonic() - self.started_at

    def stop(self, graceful: bool = True) -> None:
        """Stop the server: SIGTERM and wait, or SIGKILL when nothing needs a clean exit.

        Its log folder goes too (read :meth:`log_tail` first): every infra validation
        starts a server, and each left a folder in the temporary directory.
        """
        try:
            self._end(graceful)
        finally:
            shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def _end(self, graceful: bool) -> None:
        process = self.process
        if process.poll() is not None:
            return
        if not graceful:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_server(
    model_dir: str | Path, model_name: str = "model", env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """Start the suite's model server on 127.0.0.1 and a free port; do not wait for it.

    The caller can do other work while the server imports KServe and loads the
    model, then call :meth:`ServerProcess.wait_ready`; it must call ``stop``.
    """
    require_kserve("infra validation (the real KServe ModelServer)")
    port = free_port()
    log_dir = tempfile.mkdtemp(prefix="kfp-mlops-serve-")
    log_path = Path(log_dir) / "server.log"
    command = [
        sys.executable,
        "-m",
        "kfp_mlops.serving",
        "--model_dir",
        str(model_dir),
        "--model_name",
        model_name,
        "--http_port",
        str(port),
        "--host",
        "127.0.0.1",
        *extra_args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    return ServerProcess(process, f"http://127.0.0.1:{port}", model_name, log_path,
                         started_at=time.monotonic())


@contextlib.contextmanager
def running_server(
    model_dir: str | Path,
    model_name: str = "model",
    timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[ServerProcess]:
    """Run the suite's model server on 127.0.0.1 and a free port; always stop it.

    Raises ``ServerStartError`` (with the server's log) if it exits or is not ready
    within ``timeout_s``. ``env`` adds environment variables for the server process.
    """
    server = start_server(model_dir, model_name, env, extra_args)
    try:
        server.wait_ready(timeout_s)
        yield server
    finally:
        server.stop()
