"""What a local run's processes import and inherit (the start-up cost of `kfp-mlops run`).

Each check runs in a fresh interpreter: an import already made by pytest would hide it.
"""

import json
import os
import subprocess
import sys

import pytest

COMPILE = """
from kfp import compiler
from kfp_mlops.pipelines.training import build_training_pipeline
compiler.Compiler().compile(build_training_pipeline(), {path!r})
"""


def run_python(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_local_run_imports_kfp_without_its_api_client(tmp_path):
    found = run_python(f"""
import json, os, sys
from kfp_mlops.app.local.runner import import_kfp_without_client
import_kfp_without_client()
{COMPILE.format(path=str(tmp_path / "light.yaml"))}
heavy = sorted(m for m in ("kubernetes", "kfp.client", "google.auth", "requests")
               if m in sys.modules)
runtime_switch = os.environ.get("_KFP_RUNTIME")
import kfp
from kfp import Client
print(json.dumps({{"heavy": heavy, "switch": runtime_switch, "client": Client.__module__,
                  "components": kfp.components.__name__}}))
""")
    assert found["heavy"] == []
    assert found["switch"] is None  # not left set for the task processes
    assert found["client"] == "kfp.client.client"  # still reachable on first use
    assert found["components"] == "kfp.components"
    # kfp.dsl imported after the switch builds the pipeline a full `import kfp` builds.
    run_python(COMPILE.format(path=str(tmp_path / "full.yaml")) + "print('{}')")
    assert (tmp_path / "light.yaml").read_text() == (tmp_path / "full.yaml").read_text()


def test_without_the_api_client_an_unknown_kfp_name_is_still_an_attribute_error():
    found = run_python("""
import json
from kfp_mlops.app.local.runner import import_kfp_without_client
import_kfp_without_client()
import kfp
try:
    kfp.NoSuchThing
    said = None
except AttributeError as exc:
    said = str(exc)
print(json.dumps({"said": said}))
""")
    assert found["said"] == "module 'kfp' has no attribute 'NoSuchThing'"


MISUSED_RESOURCES = """
import json, sys
if sys.argv[1:] == ["light"]:
    from kfp_mlops.app.local.runner import import_kfp_without_client
    import_kfp_without_client()
from kfp import dsl

@dsl.component(base_image="python:3.11")
def step() -> str:
    return "x"

@dsl.pipeline
def inner():
    step()

said = []
for misuse in (lambda: inner().set_cpu_request("1"),
               lambda: dsl.importer(artifact_uri="gs://b/x", artifact_class=dsl.Artifact)
               .set_memory_limit("1G")):
    try:
        @dsl.pipeline
        def outer():
            misuse()
    except ValueError as exc:
        said.append(str(exc))
print(json.dumps({"said": said}))
"""


def test_resources_on_a_pipeline_task_fail_as_in_kfp_without_its_stack_walk(tmp_path):
    """The local run names the misused method from its frame, not inspect.stack(): the same
    check and the same error as KFP's own (and the light compile above, the same IR)."""
    script = tmp_path / "misuse.py"  # KFP reads component source, so not -c
    script.write_text(MISUSED_RESOURCES)
    said = {}
    for mode in ("light", "kfp"):
        done = subprocess.run([sys.executable, str(script), mode], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        said[mode] = json.loads(done.stdout.strip().splitlines()[-1])["said"]
    assert said["light"] == said["kfp"]
    assert [s.split()[0] for s in said["light"]] == ["set_cpu_request", "set_memory_limit"]


LOCAL_RUN_MODULES = """
import json, sys
from kfp_mlops.app.local.runner import import_kfp_without_client, run_locally
import_kfp_without_client()
from kfp import dsl

@dsl.component(base_image="python:3.11")
def step() -> str:
    return "x"

@dsl.pipeline(name="one-step")
def pipeline():
    step()

run = run_locally(pipeline, {{}}, {runs!r})
found = {{"succeeded": run.succeeded,
         "heavy": sorted(m for m in ("docker", "requests") if m in sys.modules)}}
from kfp_mlops.app.local.runner import _import_kfp_local
_import_kfp_local(docker=True)  # what a --runner docker run does first
from kfp.local import task_dispatcher
found["docker_after"] = task_dispatcher._DOCKER_AVAILABLE
print(json.dumps(found))
"""


def test_a_local_process_run_imports_no_docker_sdk_and_a_docker_run_still_can(tmp_path):
    script = tmp_path / "one_step.py"  # KFP reads component source, so not -c
    script.write_text(LOCAL_RUN_MODULES.format(runs=str(tmp_path / "runs")))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"succeeded": True, "heavy": [], "docker_after": True}


def report_env() -> str:
    import os

    return os.environ.get("OMP_WAIT_POLICY", "<unset>")


def report_preloaded() -> bool:
    import sys

    return "sklearn" in sys.modules


def run_one_task(function, tmp_path, monkeypatch, variable: str, value: str | None):
    """Run a one-task pipeline made of ``function`` locally with ``variable`` set to
    ``value`` (None: unset); return what the task returned."""
    from kfp import dsl

    from kfp_mlops.app.local.runner import run_locally

    if value is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, value)
    task = dsl.component(base_image="python:3.11", install_kfp_package=False)(function)

    @dsl.pipeline(name=function.__name__.replace("_", "-"))
    def pipeline():
        task()

    run = run_locally(pipeline, {}, tmp_path)
    assert run.succeeded, run.error
    return run.tasks[function.__name__.replace("_", "-")].parameters["Output"]


@pytest.mark.slow
@pytest.mark.parametrize("user_value, seen", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_local_tasks_wait_passively_unless_the_user_says_otherwise(
    tmp_path, monkeypatch, user_value, seen
):
    """The task gets OMP_WAIT_POLICY=PASSIVE unless the user set it."""
    assert run_one_task(report_env, tmp_path, monkeypatch, "OMP_WAIT_POLICY", user_value) == seen
    assert os.environ.get("OMP_WAIT_POLICY") == user_value  # the parent is left as it was


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux only")
@pytest.mark.parametrize("switch, preloaded", [(None, True), ("0", False)])
def test_local_tasks_start_from_the_warm_server_unless_turned_off(
    tmp_path, monkeypatch, switch, preloaded
):
    """The task starts with scikit-learn imported: forked from the fork server."""
    found = run_one_task(report_preloaded, tmp_path, monkeypatch, "KFP_MLOPS_PREFORK", switch)
    assert found is preloaded
