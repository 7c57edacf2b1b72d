"""Local task processes forked from a warm server (app/local/prefork.py), seen as kfp.local
sees them: a command run with ``sys.executable`` in a shell, its output, exit code and
signals. The probe module tells what its process was started with."""

import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kfp_mlops.app.local.prefork import Stage, forked_tasks

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

PROBE = textwrap.dedent("""
    import json, os, sys
    preloaded = {m: m in sys.modules for m in ("csv", "decimal")}
    print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv[1:],
                      "cwd": os.getcwd(), "color": os.environ.get("COLOR"),
                      "executable": sys.executable, "preloaded": preloaded}), flush=True)
    print("to stderr", file=sys.stderr)
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "raise":
        raise RuntimeError("broken task")
    if mode == "message":
        sys.exit("stopped with a message")
    if mode == "sleep":
        import time
        time.sleep(120)
    sys.exit(3)
""")
STAGES = [Stage(("csv",), functions=("early",)), Stage(("decimal",))]


@pytest.fixture
def probe(tmp_path, monkeypatch):
    (tmp_path / "probe.py").write_text(PROBE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KFP_MLOPS_PREFORK", raising=False)
    return tmp_path


def start(*args, **env):
    """Start ``python -m probe args`` the way kfp.local does (a shell, sys.executable)."""
    command = " ".join([sys.executable, "-m", "probe", *args])
    return subprocess.Popen(["sh", "-ec", f"_KFP_RUNTIME=true exec {command}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def finish(process):
    out, err = process.communicate(timeout=120)
    return process.returncode, json.loads(out.splitlines()[0]), err


def in_process_group(group):
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError):
            with open(stat) as file:
                if int(file.read().rsplit(")", 1)[1].split()[2]) == group:
                    found.append(int(stat.split("/")[2]))
    return found


def wait_until_gone(pid):
    for _ in range(1000):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def test_a_task_is_forked_from_the_warm_server_and_behaves_as_python_would(probe):
    with forked_tasks(STAGES):
        launcher = sys.executable
        process = start("late", "--function_to_execute", "late", COLOR="blue")
        code, seen, err = finish(process)
    assert code == 3
    assert seen["pid"] != process.pid  # forked by the server, not the launcher's own process
    assert seen["argv"] == ["late", "--function_to_execute", "late"]
    assert seen["cwd"] == str(probe)
    assert seen["color"] == "blue"
    assert seen["executable"] == launcher  # what the task starts goes through the server too
    assert seen["preloaded"] == {"csv": True, "decimal": True}  # it waited for the last stage
    assert "to stderr" in err
    assert sys.executable != launcher  # restored


@pytest.mark.parametrize("mode, code, said", [
    ("raise", 1, "RuntimeError: broken task"),
    ("message", 1, "stopped with a message"),
])
def test_a_failing_task_exits_as_python_would(probe, mode, code, said):
    with forked_tasks(STAGES):
        done = finish(start(mode))
    assert done[0] == code
    assert said in done[2]


def test_other_invocations_and_other_import_time_settings_run_python_itself(probe):
    with forked_tasks(STAGES):
        by_path = subprocess.run([sys.executable, str(probe / "probe.py")], capture_output=True,
                                 text=True)
        process = start(OMP_NUM_THREADS="7")  # read by OpenMP when the server loaded it
        code, seen, _ = finish(process)
    assert by_path.returncode == 3
    assert code == 3
    assert seen["pid"] == process.pid  # the launcher's own process, exec'd into Python
    assert seen["preloaded"] == {"csv": False, "decimal": False}


def test_a_signal_to_the_launcher_reaches_the_task_and_ends_both(probe):
    with forked_tasks(STAGES):
        process = start("sleep")
        task = json.loads(process.stdout.readline())["pid"]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        assert wait_until_gone(task)
    assert process.returncode == -signal.SIGTERM


def test_a_killed_launcher_takes_its_task_with_it(probe):
    with forked_tasks(STAGES):
        process = start("sleep")
        task = json.loads(process.stdout.readline())["pid"]
        process.kill()
        process.wait(timeout=60)
        assert wait_until_gone(task)


def test_the_servers_end_with_the_run_and_can_be_turned_off(probe, monkeypatch):
    with forked_tasks(STAGES):
        _, seen, _ = finish(start())
    assert wait_until_gone(seen["ppid"])  # the stage that forked the task
    monkeypatch.setenv("KFP_MLOPS_PREFORK", "0")
    before = sys.executable
    with forked_tasks(STAGES):
        assert sys.executable == before


def test_when_the_server_dies_tasks_run_python_itself_at_once(probe):
    (probe / "slow_import.py").write_text("import time\ntime.sleep(600)\n")
    with forked_tasks([Stage(("csv",), functions=("early",)), Stage(("slow_import",))]):
        launcher = (probe / sys.executable).read_text()
        server = int(launcher.split("PYTHON, SERVER, SOCKETS, EARLY = ")[1].split(",")[1])
        os.kill(server, signal.SIGKILL)  # stage 0; the stage importing slow_import lives on
        process = start("late")  # needs the last stage, which will not listen for 600 s
        code, seen, _ = finish(process)
        stages = in_process_group(server)
    assert code == 3
    assert seen["pid"] == process.pid
    assert stages and all(wait_until_gone(p) for p in stages)  # stopped mid-import at the end


def test_a_tasks_peak_memory_counts_in_the_run_as_a_fresh_processs_would(probe):
    (probe / "big.py").write_text("block = bytearray(400 * 2**20)\nblock[::4096] = b'x' * len(block[::4096])\n")
    measured = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import resource, subprocess, sys
        from kfp_mlops.app.local.prefork import Stage, forked_tasks
        with forked_tasks([Stage(("csv",))]):
            subprocess.run(["sh", "-ec", f"_KFP_RUNTIME=true {sys.executable} -m big"], check=True)
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    """)], capture_output=True, text=True, cwd=probe, timeout=120)
    assert measured.returncode == 0, measured.stderr
    assert int(measured.stdout) >= 400  # MiB: bench/ reads memory this way
