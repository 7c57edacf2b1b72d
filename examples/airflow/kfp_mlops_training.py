"""Airflow DAG ``kfp_mlops_training``: the kfp-mlops training life cycle, run by Airflow.

Copy this file into your Airflow dags folder (or point ``AIRFLOW__CORE__DAGS_FOLDER``
here) in an environment with ``pip install 'kfp-mlops[airflow]'``, then::

    airflow dags test kfp_mlops_training --conf '{"data": "/data/churn.csv",
        "target": "churned", "model_name": "churn", "store": "/srv/mlops-store"}'

The model lands in the store's registry (stage ``staging``) where
``kfp-mlops models show churn`` finds it and ``kfp-mlops models promote`` promotes it.
"""

from kfp_mlops.app.airflow.dag import build_training_dag

# Triggered runs only; pass e.g. schedule="@weekly" to retrain on a timetable.
dag = build_training_dag("kfp_mlops_training", schedule=None)
