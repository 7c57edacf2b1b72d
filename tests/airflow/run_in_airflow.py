"""Scenarios the slow tests run inside the Airflow venv (Airflow cannot live in .venv).

    python run_in_airflow.py training CONF_JSON       -> runs kfp_mlops_training with dag.test()
    python run_in_airflow.py operator SCENARIOS_JSON   -> runs KfpPipelineOperator DAGs

Each prints one line ``RESULT {json}`` with the task states, which the test reads.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state))
            for ti in run.get_task_instances()}


def training(conf: dict) -> dict:
    """The example DAG file's DAG, run once with ``conf``."""
    sys.path.insert(0, str(ROOT / "examples" / "airflow"))
    from kfp_mlops_training import dag

    run = dag.test(run_conf=conf)
    return {"dag_state": str(getattr(run.state, "value", run.state)), "tasks": _states(run),
            "run_id": run.run_id}


def operator(scenarios: list[dict]) -> dict:
    """One DAG per scenario: a KfpPipelineOperator against the given KFP host."""
    from airflow.sdk import DAG

    from kfp_mlops.airflow.operator import KfpPipelineOperator

    results = {}
    for scenario in scenarios:
        with DAG(dag_id=f"kfp_op_{scenario['name']}", schedule=None,
                 start_date=datetime(2025, 1, 1), catchup=False) as dag:
            KfpPipelineOperator(
                task_id="run_on_kfp", pipeline=scenario.get("pipeline", "training"),
                host=scenario["host"], arguments=scenario.get("arguments", {}),
                image="registry.example.com/team/kfp-mlops:1", experiment="airflow",
                poll_interval=0.05, deferrable=scenario["deferrable"],
            )
        print(f"SCENARIO {scenario['name']} START", flush=True)
        run = dag.test()
        print(f"SCENARIO {scenario['name']} END", flush=True)
        results[scenario["name"]] = {"dag_state": str(getattr(run.state, "value", run.state)),
                                     "tasks": _states(run), "run_id": run.run_id}
    return results


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "training":
        result = training(json.loads(sys.argv[2]))
    else:
        result = operator(json.loads(sys.argv[2]))
    print("RESULT " + json.dumps(result), flush=True)
