"""The compiled pipelines read as a Kubeflow cluster reads them.

No KFP backend runs here, so these tests read the IR fields the backend acts on:
``cachingOptions.enableCache`` per task (the driver skips a task with a cache hit),
parameter descriptions (the dashboard's run form), container resources (the pod's
requests and limits), executor images, and the PipelineVersion name that the KFP
webhook treats as immutable.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kfp_mlops.components.image import all_components
from kfp_mlops.components.policy import POLICIES
from kfp_mlops.pipelines import PIPELINES
from kfp_mlops.pipelines.cluster import ClusterConfig, TaskSettings
from kfp_mlops.pipelines.compile import compile_pipelines

REPO = Path(__file__).resolve().parents[2]
# Tasks that read outside state by name or change it: a cache hit would hide new data,
# repeat yesterday's decision or skip a release. Listed here independently of the policy.
SIDE_EFFECTS = {"ingest", "validate-data", "bless-model", "publish", "infra-validate", "deploy",
                "detect-drift", "monitor", "batch-predict",
                # sharded data: they read the source files, which may change
                "plan-shards", "scan-shard", "scan-shards", "detect-drift-sharded",
                # sharded scoring: they pin the registry stage or write the output prefix
                "prepare-scoring", "score-shard", "score-shards", "collect-predictions",
                # fan-in over a loop through the store (kfp_mlops.fanin): the iterations
                # write the run's prefix, the gathering tasks read (and merge-scans drops) it
                "run-trial", "select-best", "merge-scans"}


def _spec(path: Path) -> dict:
    return next(yaml.safe_load_all(path.read_text()))


def _container_tasks(spec: dict) -> list[tuple[str, dict]]:
    """(component name, task) for every task that runs a container, nested DAGs included."""
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    found = []
    for dag in dags:
        for task in dag["tasks"].values():
            ref = task["componentRef"]["name"]
            if "dag" in spec["components"][ref]:
                continue
            found.append((re.sub(r"-\d+$", "", ref.removeprefix("comp-")), task))
    return found


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    compile_pipelines(out)
    return out


def test_every_component_has_a_policy():
    names = {c.component_spec.name for c in all_components()}
    assert names == set(POLICIES)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_side_effect_tasks_never_cache_and_pure_ones_do(compiled, name):
    tasks = _container_tasks(_spec(compiled / f"{name}.yaml"))
    assert tasks
    for component, task in tasks:
        cached = task.get("cachingOptions", {}).get("enableCache", False)
        assert cached == (component not in SIDE_EFFECTS), (name, component)


def test_no_caching_turns_every_task_off(tmp_path):
    compile_pipelines(tmp_path, TaskSettings(caching=False), names=["training"])
    tasks = _container_tasks(_spec(tmp_path / "training.yaml"))
    assert not any(t.get("cachingOptions", {}).get("enableCache") for _, t in tasks)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_parameter_has_a_description(compiled, name):
    params = _spec(compiled / f"{name}.yaml")["root"]["inputDefinitions"]["parameters"]
    missing = [p for p, d in params.items() if len(d.get("description", "")) < 10]
    assert not missing


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_task_requests_and_limits_cpu_and_memory(compiled, name):
    for label, executor in _spec(compiled / f"{name}.yaml")["deploymentSpec"]["executors"].items():
        resources = executor["container"].get("resources", {})
        for field in ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest",
                      "resourceMemoryLimit"):
            assert resources.get(field), (label, field)
        assert resources["memoryLimit"] >= resources["memoryRequest"]
        assert resources["cpuLimit"] >= resources["cpuRequest"]


def test_train_memory_is_settable_at_compile_time(tmp_path):
    compile_pipelines(tmp_path, TaskSettings(train_memory="6Gi"), names=["training"])
    executors = _spec(tmp_path / "training.yaml")["deploymentSpec"]["executors"]
    for label in ("exec-train", "exec-run-trial"):
        resources = executors[label]["container"]["resources"]
        assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == (
            "6Gi", "12Gi")
    assert executors["exec-ingest"]["container"]["resources"]["resourceMemoryRequest"] == "1Gi"


@pytest.mark.parametrize("bad", ["6GB", "lots", "0Gi", "1.5Gi"])
def test_a_bad_train_memory_names_the_fix(bad):
    with pytest.raises(ValueError, match="e.g. 4Gi"):
        TaskSettings(train_memory=bad)


def _version_names(folder: Path, name: str) -> tuple[str, str]:
    docs = list(yaml.safe_load_all((folder / f"{name}.k8s.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    return by_kind["Pipeline"]["metadata"]["name"], by_kind["PipelineVersion"]["metadata"]["name"]


def test_pipeline_version_names_follow_the_spec(tmp_path):
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    compile_pipelines(first, TaskSettings(image="reg.example/kfp-mlops:1"))
    compile_pipelines(again, TaskSettings(image="reg.example/kfp-mlops:1"))
    compile_pipelines(other, TaskSettings(image="reg.example/kfp-mlops:2"))
    versions = set()
    for name in PIPELINES:
        pipeline_a, version_a = _version_names(first, name)
        assert _version_names(again, name) == (pipeline_a, version_a)  # same spec, same name
        pipeline_c, version_c = _version_names(other, name)
        assert pipeline_c == pipeline_a and version_c != version_a  # a rebuild adds a version
        assert version_a.startswith(pipeline_a + "-")
        versions |= {version_a, version_c}
        images = {e["container"]["image"]
                  for e in _spec(other / f"{name}.yaml")["deploymentSpec"]["executors"].values()}
        assert images == {"reg.example/kfp-mlops:2"}
    assert len(versions) == 2 * len(PIPELINES)


def test_compiling_with_an_image_changes_nothing_global(tmp_path):
    compile_pipelines(tmp_path / "a", TaskSettings(image="reg.example/kfp-mlops:9"))
    compile_pipelines(tmp_path / "b")
    images = {e["container"]["image"]
              for e in _spec(tmp_path / "b" / "training.yaml")["deploymentSpec"]["executors"].values()}
    assert images == {"kfp-mlops:0.1.0"}
    assert {c.component_spec.implementation.container.image for c in all_components()} == {
        "kfp-mlops:0.1.0"}


@pytest.mark.slow
@pytest.mark.parametrize("name, module", [
    ("training", "training"), ("batch-inference", "batch"), ("monitoring", "monitoring"),
    ("continuous-training", "continuous"),
])
def test_kfp_dsl_compile_on_the_pipeline_file_gives_the_same_ir(compiled, tmp_path, name, module):
    out = tmp_path / f"{name}.yaml"
    kfp_cli = Path(sys.executable).parent / "kfp"
    subprocess.run([str(kfp_cli), "dsl", "compile", "--py", str(REPO / "pipelines" / f"{module}.py"),
                    "--output", str(out)], check=True, capture_output=True, text=True)
    assert out.read_text() == (compiled / f"{name}.yaml").read_text()


def test_the_docs_table_is_the_policy():
    rows = re.findall(r"^\| `([a-z-]+)` \| (yes|\*\*no\*\*) \| (.+?) \| (\S+) / (\S+) \| (\S+) / (\S+) \|$",
                      (REPO / "docs" / "cluster.md").read_text(), re.MULTILINE)
    documented = {name: (cache == "yes", why, cpu, cpu_limit, memory, memory_limit)
                  for name, cache, why, cpu, cpu_limit, memory, memory_limit in rows}
    assert documented == {
        name: (p.cache, p.why, p.cpu_request, p.cpu_limit, p.memory_request, p.memory_limit)
        for name, p in POLICIES.items()}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_openmp_threads_match_the_cpu_limit(compiled, name):
    for label, executor in _spec(compiled / f"{name}.yaml")["deploymentSpec"]["executors"].items():
        container = executor["container"]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        assert env.get("OMP_NUM_THREADS") == container["resources"]["resourceCpuLimit"], label


def test_log_url_reaches_the_deploy_task_only_when_asked(tmp_path):
    url = "http://kfp-mlops-log-sink.team-a"
    for log_url, expected in (("", None), (url, url)):
        compile_pipelines(tmp_path, cluster=ClusterConfig(log_url=log_url), names=["training"])
        executors = _spec(tmp_path / "training.yaml")["deploymentSpec"]["executors"]
        (deploy,) = [e for label, e in executors.items() if label.startswith("exec-deploy")]
        env = {e["name"]: e["value"] for e in deploy["container"].get("env", [])}
        assert env.get("KFP_MLOPS_LOG_URL") == expected
