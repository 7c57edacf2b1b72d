"""How a KFP run's outcome is read: the real API client path against the KFP API double.

The double (tests/automation/kfp_api_double.py, with run details from kfp_double.py)
stands in for the KFP API server at the network boundary on 127.0.0.1; submit() starts
runs through the real kfp.Client and get_run() reads them back over HTTP.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from kfp_mlops.app.airflow.kfp_runs import (
    KfpRunError,
    get_run,
    read_outcome,
    skip_steps_in_spec,
)
from kfp_mlops.app.automation.submit import submit
from kfp_mlops.pipelines.cluster import ClusterConfig, TaskSettings
from kfp_mlops.pipelines.compile import compile_pipelines
from tests.airflow.kfp_double import KfpApiDoubleWithTasks
from tests.automation.kfp_api_double import serve

SKIPS = {"skip-step": "deploy", "skip-step-2": "publish", "skip-step-3": "training",
         # The display names the graph shows (pipelines/steps.py), in case the API lists them.
         "deploy-skipped": "deploy", "publish-skipped": "publish",
         "training-skipped": "training"}


def _spec(tmp_path: Path, name: str) -> dict:
    compile_pipelines(tmp_path, TaskSettings(), cluster=ClusterConfig(), names=[name])
    return next(yaml.safe_load_all((tmp_path / f"{name}.yaml").read_text()))


def test_skip_steps_are_read_from_the_compiled_pipelines(tmp_path):
    assert skip_steps_in_spec(_spec(tmp_path / "t", "training")) == SKIPS
    continuous = skip_steps_in_spec(_spec(tmp_path / "c", "continuous-training"))
    assert "retraining" in continuous.values()
    assert {"training", "publish", "deploy"} <= set(continuous.values())


def _finished_run(double: KfpApiDoubleWithTasks) -> dict:
    with serve(double) as api:
        started = submit("training", api.url, arguments={"data": "iris"},
                         settings=TaskSettings(image="reg/kfp-mlops:1"))
        polls = [get_run(api.url, started.run_id) for _ in range(double.gets_until_done)]
    assert polls[0]["state"] == "RUNNING"
    return {"run": polls[-1], "url": api.url}


def test_a_successful_run_with_no_skip_step_has_no_problem():
    got = _finished_run(KfpApiDoubleWithTasks(
        final_tasks=[{"display_name": "publish", "state": "SUCCEEDED"},
                     {"display_name": "deploy", "state": "SUCCEEDED"}]))
    outcome = read_outcome(got["run"], got["url"], SKIPS)
    assert outcome.finished and outcome.state == "SUCCEEDED"
    assert outcome.problem() is None and outcome.gate_stops == []


def test_a_succeeded_skip_step_is_a_gate_stop_naming_the_step():
    got = _finished_run(KfpApiDoubleWithTasks(
        final_tasks=[{"display_name": "bless-model", "state": "SUCCEEDED"},
                     {"display_name": "skip-step-2", "state": "SUCCEEDED"}]))
    outcome = read_outcome(got["run"], got["url"], SKIPS)
    assert outcome.state == "SUCCEEDED"
    assert outcome.gate_stops == ["publish (skip-step-2)"]
    assert "a gate stopped it: publish (skip-step-2) skipped" in outcome.problem()
    assert outcome.url in outcome.problem()


def test_an_allowed_skip_is_no_problem():
    got = _finished_run(KfpApiDoubleWithTasks(
        final_tasks=[{"display_name": "skip-step-4", "state": "SUCCEEDED"}]))
    outcome = read_outcome(got["run"], got["url"], {"skip-step-4": "retraining"},
                           allowed_skips=["retraining"])
    assert outcome.problem() is None
    assert outcome.allowed_stops == ["retraining (skip-step-4)"]


def test_a_failed_run_names_its_failed_tasks_not_drivers():
    got = _finished_run(KfpApiDoubleWithTasks(
        final_state="FAILED",
        final_tasks=[{"display_name": "train", "state": "FAILED"},
                     {"display_name": "evaluate-driver", "state": "FAILED"}]))
    outcome = read_outcome(got["run"], got["url"], SKIPS)
    assert outcome.failed_tasks == ["train"]
    assert outcome.problem().startswith(f"KFP run {outcome.run_id} ended FAILED: failed tasks train")


def test_an_unknown_run_and_an_unreachable_host_say_what_is_wrong():
    with serve(KfpApiDoubleWithTasks()) as api:
        with pytest.raises(KfpRunError, match="HTTP 404 for run nope; check the run id"):
            get_run(api.url, "nope")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(KfpRunError, match="cannot reach the KFP API server"):
        get_run(f"http://127.0.0.1:{port}", "r1", timeout_s=5)
