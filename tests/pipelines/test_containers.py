"""``--runner docker`` (app/local/containers.py): each task a container, KFP 2.17's quirks fixed.

Fast: no container engine. kfp.local runs real pipelines against tests/docker_engine.py,
a Docker Engine API server whose containers exit at once as told and which removes an
auto-removed container the moment it exits, as Podman 4.3 does. The real engine run
(podman, the built image) is tests/pipelines/test_containers_engine.py, which
docker/image-test.sh runs.
"""

import argparse
import json
import os
from pathlib import Path

import pytest
from kfp import dsl, local
from kfp.local import docker_task_handler, task_dispatcher
from kfp.pipeline_spec import pipeline_spec_pb2

from kfp_mlops.app.cli import build_parser
from kfp_mlops.app.commands.common import CliError, runner_image
from kfp_mlops.app.local import prefork
from kfp_mlops.app.local.containers import (
    ContainerRunError,
    check_engine,
    container_user,
    hand_over,
    local_paths,
    parse_quantity,
    passed_environment,
    plan_run,
    resource_args,
    run_folder,
)
from kfp_mlops.app.local.runner import run_locally, with_local_tasks
from tests.docker_engine import FakeEngine

IMAGE = "kfp-mlops:test"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def step(data: str, store: str):
    print(data, store)


@dsl.pipeline(name="container-probe")
def probe(data: str, store: str):
    task = step(data=data, store=store)
    task.set_cpu_limit("64").set_memory_limit("300Mi")


@pytest.fixture
def engine(monkeypatch):
    started = FakeEngine(images=(IMAGE,)).start()
    monkeypatch.setenv("DOCKER_HOST", started.url)
    yield started
    started.stop()


def _run(tmp_path, **arguments):
    data = tmp_path / "data" / "rows.csv"
    data.parent.mkdir(exist_ok=True)
    data.write_text("a,b\n1,2\n")
    args = {"data": str(data), "store": str(tmp_path / "store"), **arguments}
    args, plan = plan_run(IMAGE, args, inputs=["data"], outputs=["store"])
    return run_locally(probe, args, tmp_path / "runs", plan), args, plan


# -- the quirks, as KFP 2.17 has them (if one of these starts failing, KFP fixed it and
# -- the matching workaround in app/local/containers.py can go) -----------------------

@pytest.mark.filterwarnings("ignore:Task 'step'")
def test_kfp_docker_runner_reports_a_failed_task_as_success_when_the_engine_auto_removes(
        engine, tmp_path):
    engine.exit_code, engine.logs = 1, b"ValueError: the task failed\n"
    local.init(runner=local.DockerRunner(), pipeline_root=str(tmp_path / "runs"),
               raise_on_error=True)
    probe(data="x", store="y")  # no RuntimeError: the failure is lost (quirk b)
    assert engine.created[0]["HostConfig"]["AutoRemove"] is True
    assert "Entrypoint" not in engine.created[0] or not engine.created[0]["Entrypoint"]


# -- the workarounds -------------------------------------------------------------------

def test_a_failing_task_fails_the_run_with_its_own_message(engine, tmp_path, capsys):
    engine.exit_code = 1
    engine.logs = b"kfp_mlops.errors.DataError: data file '/x/missing.csv' does not exist\n"
    run, _, _ = _run(tmp_path)
    assert not run.succeeded and "'step'" in run.error
    out = capsys.readouterr().out
    assert "DataError: data file '/x/missing.csv' does not exist" in out
    assert "task container exited with status 1" in out
    assert engine.removed == ["c0000"] and not engine.containers  # removed after the wait


def test_lines_a_followed_log_stream_missed_are_read_after_the_exit(engine, tmp_path, capsys):
    engine.exit_code = 1
    engine.logs = "first line\nValueError: the last line, é\n".encode()
    engine.follow_cut = 15  # the stream ends inside the second line
    run, _, _ = _run(tmp_path)
    assert not run.succeeded
    out = capsys.readouterr().out
    assert "first line" in out and "ValueError: the last line, é" in out
    assert out.count("first line") == 1  # nothing printed twice


def test_a_container_the_engine_refuses_fails_its_task_saying_why(engine, tmp_path, capsys):
    engine.refuse = "crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted"
    run, _, _ = _run(tmp_path)
    assert not run.succeeded
    assert ("ContainerRunError: the engine refused the task's container (crun: setrlimit "
            "`RLIMIT_NOFILE`: Operation not permitted)") in capsys.readouterr().out


def test_each_task_container_has_the_image_user_limits_and_mounts(engine, tmp_path):
    run, args, plan = _run(tmp_path)
    assert run.succeeded, run.error
    [body] = engine.created
    host = body["HostConfig"]
    assert body["Image"] == IMAGE
    assert body["Entrypoint"] == [""]  # (a): the command is not handed to the ENTRYPOINT
    assert body["Cmd"][0] == "sh" and "--executor_input" in body["Cmd"]
    assert not host.get("AutoRemove")  # (b)
    assert body["User"] == container_user()[0] == plan.user
    assert host["ReadonlyRootfs"] is True and "/tmp" in host["Tmpfs"]
    assert host["NetworkMode"] == "host"
    assert host["NanoCpus"] == (os.cpu_count() or 1) * 10**9  # "64" capped at the cores
    assert host["Memory"] == 300 * 2**20
    mounts = {m["Target"]: (m["Source"], m["ReadOnly"]) for m in host["Mounts"]}
    assert mounts[args["store"]] == (args["store"], False)
    assert mounts[str(Path(args["data"]))] == (args["data"], True)
    assert any(b.startswith(f"{tmp_path / 'runs'}:{tmp_path / 'runs'}:") for b in host["Binds"])
    env = dict(item.split("=", 1) for item in body["Env"])
    assert env["HOME"] == "/tmp"
    assert engine.removed == ["c0000"]


def test_the_fixes_last_as_long_as_the_run(engine, tmp_path):
    handler = docker_task_handler.DockerTaskHandler
    dispatch = task_dispatcher.run_single_task_implementation
    _run(tmp_path)
    assert docker_task_handler.DockerTaskHandler is handler
    assert task_dispatcher.run_single_task_implementation is dispatch


@pytest.mark.skipif(os.geteuid() != 0, reason="handing folders to uid 1000 needs root")
def test_as_root_the_written_folders_are_handed_to_the_image_user(engine, tmp_path):
    (tmp_path / "store" / "models").mkdir(parents=True)
    (tmp_path / "store" / "models" / "old.json").write_text("{}")
    run, _, _ = _run(tmp_path)
    assert run.succeeded, run.error
    for path in [tmp_path / "store", tmp_path / "store" / "models" / "old.json",
                 run.run_dir, tmp_path / "runs"]:
        assert (path.stat().st_uid, path.stat().st_gid) == (1000, 1000), path
    assert (tmp_path / "data" / "rows.csv").stat().st_uid == 0  # inputs keep their owner


def test_no_engine_is_an_error_that_says_how_to_start_one(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/podman.sock")
    with pytest.raises(ContainerRunError, match="podman system service") as err:
        check_engine(IMAGE)
    assert "unix:///nonexistent/podman.sock" in str(err.value)


def test_a_missing_image_is_an_error_that_says_how_to_build_it(engine):
    with pytest.raises(ContainerRunError, match=r"docker build -t other:1 \."):
        check_engine("other:1")
    check_engine(IMAGE)  # present: no error


# -- the pieces ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("512Mi", 512 * 2**20), ("4Gi", 4 * 2**30),
    ("1G", 1e9), ("100k", 1e5), ("1e3", 1000.0),
])
def test_kubernetes_quantities(text, value):
    assert parse_quantity(text) == value


def test_a_bad_quantity_names_itself():
    with pytest.raises(ContainerRunError, match="'4 gigs'"):
        parse_quantity("4 gigs")


def test_resource_args_prefer_kubernetes_quantities_and_cap_the_cpus():
    resources = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=8.0, resource_cpu_limit="8", memory_limit=0.5, resource_memory_limit="512Mi")
    assert resource_args(resources, cores=2) == {"nano_cpus": 2 * 10**9, "mem_limit": 2**29}
    old = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=0.5, memory_limit=1.0)
    assert resource_args(old, cores=2) == {"nano_cpus": 5 * 10**8, "mem_limit": 10**9}
    empty = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    assert resource_args(empty) == {}


def test_local_paths_become_absolute_mounts_and_uris_stay(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("x\n1\n")
    arguments = {"data": "in/a.csv", "store": "out/store", "other": "in/a.csv"}
    rewritten, mounts = local_paths(arguments, ["data"], ["store"], cwd=tmp_path)
    assert rewritten == {"data": str(tmp_path / "in/a.csv"),
                         "store": str(tmp_path / "out/store"), "other": "in/a.csv"}
    assert mounts == {str(tmp_path / "in/a.csv"): "ro", str(tmp_path / "out/store"): "rw"}
    assert (tmp_path / "out/store").is_dir()
    for value in ["penguins", "s3://bucket/x.csv", "predictions:penguins?window=7d", ""]:
        assert local_paths({"data": value}, ["data"], cwd=tmp_path) == ({"data": value}, {})


def test_a_missing_file_or_a_glob_mounts_the_folder_above(tmp_path):
    (tmp_path / "shards").mkdir()
    _, mounts = local_paths({"data": "nope/missing.csv"}, ["data"], cwd=tmp_path)
    assert mounts == {str(tmp_path): "ro"}  # the task itself says the file is missing
    _, mounts = local_paths({"data": "shards/*.parquet"}, ["data"], cwd=tmp_path)
    assert mounts == {str(tmp_path / "shards"): "ro"}
    _, mounts = local_paths({"data": ".", "store": "."}, ["data"], ["store"], cwd=tmp_path)
    assert mounts == {str(tmp_path): "rw"}  # read-write wins


def test_the_store_settings_pass_and_nothing_else():
    environ = {"AWS_ACCESS_KEY_ID": "k", "S3_VERIFY_SSL": "0", "KFP_MLOPS_LOG_URL": "http://x",
               "KFP_MLOPS_PREFORK": "0", "PATH": "/host/bin", "HOME": "/root",
               "OMP_WAIT_POLICY": "ACTIVE"}
    assert passed_environment(environ) == {
        "AWS_ACCESS_KEY_ID": "k", "S3_VERIFY_SSL": "0", "KFP_MLOPS_LOG_URL": "http://x",
        "HOME": "/tmp", "OMP_WAIT_POLICY": "ACTIVE"}


def test_root_runs_tasks_as_the_image_user_others_as_themselves():
    assert container_user(0, 0) == ("1000:1000", True)
    assert container_user(1234, 100) == ("1234:100", False)


def test_the_run_folder_comes_from_the_executor_input(tmp_path):
    executor_input = {"outputs": {"outputFile": f"{tmp_path}/run-1/task/executor_output.json"}}
    command = ["sh", "-c", "...", "--executor_input", json.dumps(executor_input)]
    assert run_folder(command, str(tmp_path)) == tmp_path / "run-1"
    assert run_folder(["sh", "-c", "true"], str(tmp_path)) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_hand_over_changes_only_what_differs(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    hand_over(tmp_path / "a", "1000:1000", recursive=False)
    assert (tmp_path / "a").stat().st_uid == 1000 and (tmp_path / "a/b").stat().st_uid == 0
    hand_over(tmp_path / "a", "1000:1000")
    assert (tmp_path / "a/b/f").stat().st_uid == 1000


def test_the_cli_takes_the_runner_and_the_image(monkeypatch):
    parser = build_parser()
    for command in (["run"], ["monitor", "--model-name", "m"],
                    ["continuous", "--model-name", "m"], ["score", "m@production", "x.csv"]):
        args = parser.parse_args([*command, "--runner", "docker", "--image", "r/k:1"])
        assert runner_image(args) == "r/k:1"
        assert runner_image(parser.parse_args(command)) is None
    monkeypatch.setenv("KFP_MLOPS_IMAGE", "r/k:env")
    assert runner_image(parser.parse_args(["run", "--runner", "docker"])) == "r/k:env"
    monkeypatch.delenv("KFP_MLOPS_IMAGE")
    assert runner_image(parser.parse_args(["run", "--runner", "docker"])) == "kfp-mlops:0.1.0"
    with pytest.raises(CliError, match="needs --runner docker"):
        runner_image(parser.parse_args(["run", "--image", "r/k:1"]))


def test_a_docker_run_starts_no_fork_server():
    seen = []

    @with_local_tasks
    def command(args):
        seen.append(prefork._active)
        return 0

    assert command(argparse.Namespace(runner="docker")) == 0
    assert seen == [False]
