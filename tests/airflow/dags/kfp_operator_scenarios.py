"""Airflow DAGs for the operator tests: one per scenario in $KFP_MLOPS_TEST_SCENARIOS.

``dag.test()`` runs only DAGs that Airflow parsed from its dags folder, so the test
points AIRFLOW__CORE__DAGS_FOLDER at this folder and passes the scenarios (KFP hosts of
API doubles on 127.0.0.1) through the environment.
"""

import json
import os
from datetime import datetime

from airflow.sdk import DAG

from kfp_mlops.app.airflow.operator import KfpPipelineOperator

SCENARIOS = json.loads(os.environ.get("KFP_MLOPS_TEST_SCENARIOS", "[]"))
DAGS = {}

for scenario in SCENARIOS:
    with DAG(dag_id=f"kfp_op_{scenario['name']}", schedule=None,
             start_date=datetime(2025, 1, 1), catchup=False) as dag:
        KfpPipelineOperator(
            task_id="run_on_kfp", pipeline=scenario.get("pipeline", "training"),
            host=scenario["host"], arguments=scenario.get("arguments", {}),
            image="registry.example.com/team/kfp-mlops:1", experiment="airflow",
            poll_interval=0.05, deferrable=scenario["deferrable"],
        )
    DAGS[scenario["name"]] = dag
    globals()[f"dag_{scenario['name']}"] = dag
