"""Real Apache Airflow 3 runs, in the Airflow venv (see conftest.py), on SQLite.

1. ``airflow dags test kfp_mlops_training --conf ...`` (the example DAG file, the CLI the
   issue names) on generated loan data the suite ships no copy of, into a local store;
   then the suite's own CLI in *this* venv finds, promotes and reads the model.
2. The same DAG on data that breaks the stored schema: the data gate short-circuits,
   every later task is skipped, the log says why, and nothing is published.
3. ``KfpPipelineOperator`` (deferred: dag.test() runs the trigger inline, after a
   serialize/deserialize round trip; and in the worker) against the HTTP double of the
   KFP API server on 127.0.0.1: a successful run, a run a gate stopped, a failed run.
4. Without kserve (the Airflow venv has none), serving says which extra to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.airflow.kfp_double import KfpApiDoubleWithTasks
from tests.automation.kfp_api_double import serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("run_in_airflow.py")
CLI = str(Path(sys.executable).with_name("kfp-mlops"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600)


def _in_airflow(env: dict, *args: str) -> tuple[dict, str]:
    """Run run_in_airflow.py in the Airflow venv; return its RESULT and its whole output."""
    python = env["KFP_MLOPS_AIRFLOW_PYTHON"]
    done = subprocess.run([python, str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=900, cwd=env["AIRFLOW_HOME"])
    output = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, output[-5000:]
    return json.loads(lines[-1][len("RESULT "):]), output


@pytest.fixture(scope="module")
def env(airflow_env, airflow_venv) -> dict:
    return {**airflow_env, "KFP_MLOPS_AIRFLOW_PYTHON": str(airflow_venv / "bin" / "python")}


@pytest.fixture(scope="module")
def trained(env, tmp_path_factory) -> dict:
    """One `airflow dags test` of the example DAG on generated loans data."""
    work = tmp_path_factory.mktemp("airflow-training")
    data, store = work / "loans.csv", work / "store"
    made = _cli("data", "generate", "--kind", "reference", "--rows", "600", "--seed", "7",
                "--out", str(data))
    assert made.returncode == 0, made.stderr
    conf = {"data": str(data), "target": "default", "model_name": "loans-af",
            "store": str(store)}
    done = subprocess.run(
        [str(Path(env["KFP_MLOPS_AIRFLOW_PYTHON"]).with_name("airflow")), "dags", "test",
         "kfp_mlops_training", "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=900, cwd=env["AIRFLOW_HOME"],
    )
    return {"store": store, "data": data, "done": done, "work": work}


def test_airflow_dags_test_publishes_a_model_the_suite_cli_reads_and_promotes(trained):
    done = trained["done"]
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "data (validate) gate passed" in output and "model (bless) gate passed" in output

    shown = _cli("models", "show", "loans-af", "--store", str(trained["store"]),
                 "--output", "json")
    assert shown.returncode == 0, shown.stderr
    version = json.loads(shown.stdout)
    assert version["version"] == 1 and version["stage"] == "staging" and version["blessed"]
    assert version["metadata"]["run_id"].startswith("airflow:kfp_mlops_training/")
    assert version["metadata"]["dataset_version"]

    promoted = _cli("models", "promote", "loans-af", "1", "--stage", "production",
                    "--reason", "trained by Airflow", "--store", str(trained["store"]))
    assert promoted.returncode == 0, promoted.stderr
    production = _cli("models", "show", "loans-af@production", "--store",
                      str(trained["store"]), "--output", "json")
    assert json.loads(production.stdout)["version"] == 1


def test_a_failed_data_gate_skips_training_and_logs_the_reason(env, trained):
    broken = trained["work"] / "loans-broken.csv"
    frame = pd.read_csv(trained["data"])
    # A column the stored schema requires is gone: a blocking anomaly.
    frame.drop(columns=[frame.columns[0]]).to_csv(broken, index=False)
    conf = {"data": str(broken), "target": "default", "model_name": "loans-af",
            "store": str(trained["store"])}

    result, output = _in_airflow(env, "training", json.dumps(conf))

    tasks = result["tasks"]
    assert tasks["validate"] == "success" and tasks["data_gate"] == "success"
    for later in ("split", "train", "evaluate", "bless", "model_gate", "publish",
                  "model_card"):
        assert tasks[later] == "skipped", (later, tasks)
    assert "data (validate) gate FAILED" in output
    assert frame.columns[0] in output.split("gate FAILED", 1)[1][:2000]  # the reason names it
    listed = _cli("models", "list", "loans-af", "--store", str(trained["store"]),
                  "--output", "json")
    assert [v["version"] for v in json.loads(listed.stdout)] == [1]


def test_operator_fails_the_task_on_a_failed_run_or_a_gate_stop(env):
    gate_tasks = [{"display_name": "ingest", "state": "SUCCEEDED"},
                  {"display_name": "bless-model", "state": "SUCCEEDED"},
                  {"display_name": "skip-step-2", "state": "SUCCEEDED"}]
    failed_tasks = [{"display_name": "train", "state": "FAILED"},
                    {"display_name": "train-driver", "state": "SUCCEEDED"}]
    with serve(KfpApiDoubleWithTasks(gets_until_done=3)) as ok, \
            serve(KfpApiDoubleWithTasks(final_tasks=gate_tasks)) as gated, \
            serve(KfpApiDoubleWithTasks(final_state="FAILED", final_tasks=failed_tasks)) as bad:
        scenarios = [
            {"name": "ok_deferred", "host": ok.url, "deferrable": True,
             "arguments": {"data": "s3://raw/loans.csv", "target": "default"}},
            {"name": "gate_deferred", "host": gated.url, "deferrable": True},
            {"name": "failed_deferred", "host": bad.url, "deferrable": True},
            {"name": "gate_in_worker", "host": gated.url, "deferrable": False},
        ]
        dags = {"AIRFLOW__CORE__DAGS_FOLDER": str(SCRIPT.with_name("dags")),
                "KFP_MLOPS_TEST_SCENARIOS": json.dumps(scenarios)}
        result, output = _in_airflow({**env, **dags}, "operator")

    assert result["ok_deferred"]["tasks"] == {"run_on_kfp": "success"}
    [run] = ok.runs.values()
    assert run["runtime_config"]["parameters"] == {"data": "s3://raw/loans.csv",
                                                   "target": "default"}
    assert run["display_name"] == f"kfp_op_ok_deferred {result['ok_deferred']['run_id']}"
    assert "registry.example.com/team/kfp-mlops:1" in ok.calls(
        "POST", "/pipelines/upload")[0].body["uploadfile"]
    assert len(ok.calls("GET", f"/runs/{run['run_id']}")) >= 3  # polled until final
    assert "running trigger in line" in output  # it really deferred

    for name in ("gate_deferred", "gate_in_worker", "failed_deferred"):
        assert result[name]["tasks"] == {"run_on_kfp": "failed"}, (name, result[name])
    assert "a gate stopped it: publish (skip-step-2) skipped" in output
    assert "ended FAILED: failed tasks train" in output


def test_without_kserve_serving_names_the_extra_to_install(env, trained):
    python = env["KFP_MLOPS_AIRFLOW_PYTHON"]
    probe = subprocess.run([python, "-c", "import kserve"], capture_output=True, text=True)
    assert probe.returncode != 0, "the Airflow venv must not hold kserve"

    served = subprocess.run(
        [str(Path(python).with_name("kfp-mlops")), "serve", "loans-af@production", "--store",
         str(trained["store"])], env=env, capture_output=True, text=True, timeout=120,
    )
    assert served.returncode == 1
    assert "pip install 'kfp-mlops[serving]'" in served.stderr
    imported = subprocess.run([python, "-c", "import kfp_mlops.serving.predictor"],
                              capture_output=True, text=True, env=env)
    assert "pip install 'kfp-mlops[serving]'" in imported.stderr
