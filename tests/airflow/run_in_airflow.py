"""Scenarios the slow tests run inside the Airflow venv (Airflow cannot live in .venv).

    python run_in_airflow.py training CONF_JSON       -> runs kfp_mlops_training with dag.test()
    python run_in_airflow.py operator                  -> runs dags/kfp_operator_scenarios.py

Each prints one line ``RESULT {json}`` with the task states, which the test reads.
"""

from __future__ import annotations

import json
import sys
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


def operator() -> dict:
    """Run each DAG of dags/kfp_operator_scenarios.py (scenarios come from the environment)."""
    sys.path.insert(0, str(Path(__file__).with_name("dags")))
    from kfp_operator_scenarios import DAGS

    results = {}
    for name, dag in DAGS.items():
        print(f"SCENARIO {name} START", flush=True)
        run = dag.test()
        print(f"SCENARIO {name} END", flush=True)
        results[name] = {"dag_state": str(getattr(run.state, "value", run.state)),
                         "tasks": _states(run), "run_id": run.run_id}
    return results


if __name__ == "__main__":
    kind = sys.argv[1]
    result = training(json.loads(sys.argv[2])) if kind == "training" else operator()
    print("RESULT " + json.dumps(result), flush=True)
