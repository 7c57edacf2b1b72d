"""``--runner docker`` against a real engine and the real image (docker/image-test.sh runs it).

Skipped unless ``KFP_MLOPS_TEST_IMAGE`` names a built kfp-mlops image on the engine
``DOCKER_HOST`` points at (Docker, or Podman's service). What a task sees inside its
container is read from inside it: the user, a read-only root, the memory and CPU limits
of its IR, a writable /tmp, and a failing task fails the run.
"""

import json
import os

import pytest
from kfp import dsl

from kfp_mlops.app.local.containers import plan_run
from kfp_mlops.app.local.runner import run_locally
from kfp_mlops.components.image import DEFAULT_IMAGE

IMAGE = os.environ.get("KFP_MLOPS_TEST_IMAGE", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not IMAGE, reason="set KFP_MLOPS_TEST_IMAGE to a built kfp-mlops image "
                       "(docker/image-test.sh does)"),
]


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def look_around() -> str:
    import json
    import os
    import tempfile

    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    try:
        open("/written-by-a-task", "w").close()
        root = "writable"
    except OSError as exc:
        root = exc.strerror
    with tempfile.NamedTemporaryFile() as scratch:
        tmp = scratch.name
    return json.dumps({
        "user": f"{os.getuid()}:{os.getgid()}", "root": root, "tmp": tmp,
        "memory": read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        or read("/sys/fs/cgroup/memory.max"),
        "cpu": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") or read("/sys/fs/cgroup/cpu.max"),
        "home": os.environ["HOME"],
    })


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def fail_loudly():
    raise ValueError("this task fails on purpose")


@dsl.pipeline(name="look-around")
def looking():
    look_around().set_container_image(IMAGE).set_cpu_limit("1").set_memory_limit("384Mi")


@dsl.pipeline(name="fail-loudly")
def failing():
    fail_loudly().set_container_image(IMAGE)


def test_a_task_runs_as_the_image_user_read_only_within_its_limits(tmp_path):
    arguments, plan = plan_run(IMAGE, {})
    run = run_locally(looking, arguments, tmp_path / "runs", plan)
    assert run.succeeded, run.error
    seen = json.loads(run.tasks["look-around"].parameters["Output"])
    assert seen["user"] == plan.user
    assert seen["root"] == "Read-only file system"
    assert seen["tmp"].startswith("/tmp/") and seen["home"] == "/tmp"
    assert seen["memory"] == str(384 * 2**20)
    assert seen["cpu"] in ("100000", "100000 100000")  # one CPU: the quota is one period


def test_a_failing_task_fails_the_run(tmp_path, capsys):
    arguments, plan = plan_run(IMAGE, {})
    run = run_locally(failing, arguments, tmp_path / "runs", plan)
    assert not run.succeeded and "'fail-loudly'" in run.error
    assert "ValueError: this task fails on purpose" in capsys.readouterr().out
