"""Start the task processes of a local run from a warm interpreter (a fork server).

Why: ``kfp.local``'s SubprocessRunner runs every task as a fresh
``python -m kfp.dsl.executor_main``, and a fresh interpreter spends 0.3-2.5 s importing
pyarrow, pandas, scikit-learn and KServe before the task does anything: on the bundled
penguins data that was most of the run. During a local run one server process imports
those libraries once and forks a child for each task. The child *is* the task process:
kfp.local still starts it (through a small launcher given to it as the Python
executable), streams its output and reads its exit code; only the imports are shared.
Tasks that the task itself starts with ``sys.executable`` (the model server of infra
validation) go through the launcher too. On a cluster every task is its own pod and
none of this is involved.

The launcher forwards SIGINT, SIGTERM and SIGHUP to the task, and the task ends when its
launcher is killed. It runs Python itself (exec) for anything but ``-m module``, when the
server is gone, or when the task's environment differs from the server's in a variable
the preloaded libraries read at import (OpenMP, BLAS, ``PYTHON*``: see
:data:`IMPORT_TIME_ENV`). Linux only: elsewhere ``fork`` after native libraries started
threads is not safe, and runs start tasks as before. ``KFP_MLOPS_PREFORK=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import marshal
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Variables read once when a preloaded library loads (OpenMP and BLAS thread pools, the
# interpreter's own start-up): a task whose values differ starts a fresh interpreter.
IMPORT_TIME_ENV = ("OMP_", "KMP_", "GOMP_", "OPENBLAS_", "MKL_", "PYTHON", "_KFP_RUNTIME")
_FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_LENGTH = struct.Struct("!Q")
_active = False  # a server is running for this process

# The launcher runs with ``-IS`` (no site-packages) and imports only built-in modules
# (marshal, _socket, _signal: no json, socket or signal, which import re and enum): it
# starts in about 15 ms of CPU instead of 30, once per task. It speaks a line protocol
# on a stage's socket: it sends the request (marshal: the launcher is the server's own
# interpreter) with its standard streams attached; the server answers ``fallback`` (then
# the launcher runs Python itself), or the task answers ``pid N`` and, when it ends,
# ``exit CODE``. A task waits for the first stage that imported what it needs (``EARLY``:
# KFP function name -> stage; others need the last stage): importing the same libraries
# beside that stage would only slow both.
_LAUNCHER = '''#!{python} -IS
import _signal, _socket, marshal, os, sys, time
from array import array
PYTHON, SERVER, SOCKETS, EARLY = {python!r}, {server!r}, {sockets!r}, {early!r}
WAIT_S = {wait_s!r}
args = sys.argv[1:]
def run_python_itself():
    os.execv(PYTHON, [PYTHON, *args])
if len(args) < 2 or args[0] != "-m":
    run_python_itself()
named = "--function_to_execute" in args[:-1]
needed = EARLY.get(args[args.index("--function_to_execute") + 1] if named else "", len(SOCKETS) - 1)
def connect(path):
    server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        server.connect(path)
        return server
    except OSError:
        server.close()
        return None
def server_alive():  # not exited, nor a zombie its parent has not reaped yet
    try:
        with open(f"/proc/{{SERVER}}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
def connect_to_stage():  # the latest stage listening, once it is one the task can use
    deadline = time.monotonic() + WAIT_S
    while True:
        for stage in range(len(SOCKETS) - 1, needed - 1, -1):
            server = connect(SOCKETS[stage])
            if server:
                return server
        if not server_alive() or time.monotonic() > deadline:
            raise OSError("no stage to start from")
        time.sleep(0.02)
def lines(server):  # the server's and then the task's replies, a line at a time
    pending = b""
    while True:
        chunk = server.recv(4096)
        if not chunk:
            return
        pending += chunk
        while b"\\n" in pending:
            line, pending = pending.split(b"\\n", 1)
            yield line.decode()
try:
    server = connect_to_stage()
    request = marshal.dumps({{"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}})
    server.sendmsg([len(request).to_bytes(8, "big")],
                   [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array("i", [0, 1, 2]))])
    server.sendall(request)
    replies = lines(server)
    first = next(replies, "").split()
except OSError:
    run_python_itself()
if first[:1] != ["pid"]:
    run_python_itself()
pid, forwarded = int(first[1]), []
def forward(signum, frame):
    forwarded.append(signum)
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
for signum in {signals}:
    _signal.signal(signum, forward)
for line in replies:
    if line.startswith("exit "):
        os._exit(int(line.split()[1]))  # nothing to flush: the launcher never writes
if forwarded:  # the task died of the signal it was sent: so does its launcher
    _signal.signal(forwarded[-1], _signal.SIG_DFL)
    os.kill(os.getpid(), forwarded[-1])
sys.stderr.write("kfp-mlops: the task process ended without an exit status\\n")
sys.exit(1)
'''


def available() -> bool:
    """Whether local runs may fork their tasks (Linux, not turned off)."""
    return (sys.platform.startswith("linux") and hasattr(socket, "send_fds")
            and os.environ.get("KFP_MLOPS_PREFORK", "1") != "0")


@dataclass(frozen=True)
class Stage:
    """Modules a stage of the server imports, and the KFP functions it can start.

    ``functions`` is None for "any task"; a function in no earlier stage's list waits for
    the last stage. A ``module:function`` entry imports the module and calls the function
    (with no arguments) there, in the server's order: work the stage does before it
    imports what follows (``lighter_imports``).
    """

    modules: tuple[str, ...]
    functions: tuple[str, ...] | None = None


@contextlib.contextmanager
def forked_tasks(stages: Sequence[Stage], wait_s: float = 60.0) -> Iterator[None]:
    """While active, Python processes that kfp.local starts are forked from a warm server.

    The server imports the first stage's modules and serves; a copy of it forked then
    imports the next stage's and serves from then on, and so on, so the data tasks never
    wait for scikit-learn. A task waits at most ``wait_s`` for its stage (then starts
    Python itself). A no-op when not :func:`available`.
    """
    global _active
    if _active or not available():  # nested: the server started first serves
        yield
        return
    real_python = sys.executable
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-prefork-") as folder:
        server, launcher = _start_server(Path(folder), stages, wait_s)
        _active = True
        try:
            if server.stdout.readline().strip() == b"started":  # type: ignore[union-attr]
                # kfp.local's SubprocessRunner starts tasks with sys.executable
                # (use_venv=False): the one place to hand it the launcher.
                sys.executable = str(launcher)
            yield  # (if the server could not start, tasks start as before)
        finally:
            sys.executable = real_python
            _active = False
            _stop_server(server)


def _start_server(
    folder: Path, stages: Sequence[Stage], wait_s: float
) -> tuple[subprocess.Popen[bytes], Path]:
    sockets = [str(folder / f"stage-{i}.sock") for i in range(len(stages))]
    early = {name: i for i, stage in reversed(list(enumerate(stages)))
             for name in stage.functions or ()}
    launcher = folder / "python"
    plan = json.dumps([[path, stage.modules] for path, stage in zip(sockets, stages, strict=True)])
    server = subprocess.Popen(
        [sys.executable, "-m", __name__, str(launcher), plan],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "_KFP_RUNTIME": "true"},
        # Its own process group: a terminal's Ctrl-C reaches tasks through their
        # launchers, and whatever is left when the run ends is stopped in one call.
        start_new_session=True,
    )
    launcher.write_text(_LAUNCHER.format(
        python=sys.executable, server=server.pid, sockets=sockets, early=early, wait_s=wait_s,
        signals="(" + ", ".join(f"_signal.{s.name}" for s in _FORWARDED_SIGNALS) + ",)"))
    launcher.chmod(0o755)
    return server, launcher


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    server.stdin.close()  # type: ignore[union-attr]  # EOF: every stage exits
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # a stage still importing
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    server.stdout.close()  # type: ignore[union-attr]


def _serve(launcher: str, stages: list[tuple[str, list[str]]]) -> None:
    """The server: import a stage, fork the next stage's server, then serve tasks."""
    started_with = dict(os.environ)  # imports add variables (scikit-learn sets KMP_*)
    print("started", flush=True)  # tasks wait for their stage's socket from now on
    for number, (socket_path, modules) in enumerate(stages):
        for module in modules:
            name, _, call = module.partition(":")
            with contextlib.suppress(Exception):  # a module that fails is the task's to import
                imported = importlib.import_module(name)
                if call:
                    getattr(imported, call)()
        if number + 1 < len(stages) and os.fork() == 0:
            continue  # the child goes on importing the next stage
        # Bound under another name and renamed: a launcher finds the socket listening.
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(socket_path + ".new")
        listener.listen(64)
        os.rename(socket_path + ".new", socket_path)
        events = selectors.DefaultSelector()
        events.register(listener, selectors.EVENT_READ)
        events.register(sys.stdin, selectors.EVENT_READ)  # EOF when the run ends or dies
        while True:
            for key, _ in events.select(timeout=0.5):
                if key.fileobj is sys.stdin:
                    _reap(wait_s=10)  # the next stage, ending too
                    return
                connection, _ = listener.accept()
                with connection, contextlib.suppress(OSError):
                    _start_task(connection, listener, launcher, started_with)
            _reap()


def _reap(wait_s: float = 0.0) -> None:
    """Collect ended tasks and stages, waiting up to ``wait_s`` for the rest.

    Waited for, their peak memory counts in this process's ``RUSAGE_CHILDREN``, and so in
    the run's, as a task process started by kfp.local itself would.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def _start_task(
    connection: socket.socket, listener: socket.socket, launcher: str, started_with: dict[str, str]
) -> None:
    header, fds, _, _ = socket.recv_fds(connection, _LENGTH.size, 3)
    try:
        header += _receive(connection, _LENGTH.size - len(header))
        request = marshal.loads(_receive(connection, _LENGTH.unpack(header)[0]))
        # What the imports added stays, as if the task had imported them itself; a task
        # started by a task (the infra-validation server) has those values already.
        added = {k: v for k, v in os.environ.items() if k not in started_with}
        theirs = {k: v for k, v in request["env"].items() if added.get(k) != v}
        if len(fds) != 3 or _import_time_env(theirs) != _import_time_env(started_with):
            connection.sendall(b"fallback\n")
            return
        if os.fork() == 0:
            listener.close()
            _run_task(connection, request | {"env": added | request["env"]}, fds, launcher)
    finally:
        for fd in fds:
            os.close(fd)


def _receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the launcher went away mid-request")
        data += chunk
    return data


def _import_time_env(env) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


def _run_task(connection: socket.socket, request: dict, fds: list[int], launcher: str) -> None:
    """In the forked child: become ``python -m module args`` with the launcher's streams."""
    code = 1
    try:
        for signum in (signal.SIGCHLD, *_FORWARDED_SIGNALS):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        module, *args = request["argv"][1:]
        sys.argv = [module, *args]
        sys.path[0] = request["cwd"]
        sys.executable = launcher
        connection.sendall(f"pid {os.getpid()}\n".encode())
        threading.Thread(target=_end_with_launcher, args=(connection,), daemon=True).start()
        sys.modules.pop(module, None)  # preloaded or not, it runs afresh as __main__
        code = _run_module(module)
    finally:
        with contextlib.suppress(Exception):
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            connection.sendall(f"exit {code}\n".encode())
        os._exit(code)


def _run_module(module: str) -> int:
    """Run ``module`` as ``__main__``; the exit code ``python -m module`` would have."""
    import runpy
    import traceback

    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _end_with_launcher(connection: socket.socket) -> None:
    """The launcher never writes after its request: end the task when it goes away."""
    with contextlib.suppress(OSError):
        while connection.recv(1):
            pass
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]))
    os._exit(0)  # no interpreter teardown of everything imported: it took 0.5 s a stage
