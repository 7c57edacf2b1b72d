"""Airflow DAG ``kfp_mlops_on_kubeflow``: the training pipeline on Kubeflow, watched by Airflow.

The task starts the suite's training pipeline on a KFP host and waits for it (deferred),
failing if the run fails or a gate stops it.

Set the Airflow Variable ``kfp_host`` (e.g. ``http://ml-pipeline.kubeflow:8888``) and
``kfp_image`` (your build of the kfp-mlops image); the run's arguments are DAG params.
"""

from datetime import datetime

from airflow.sdk import DAG, Param

from kfp_mlops.app.airflow.operator import KfpPipelineOperator

with DAG(
    dag_id="kfp_mlops_on_kubeflow",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "data": Param("s3://raw/churn.csv", type="string"),
        "target": Param("churned", type="string"),
        "model_name": Param("churn", type="string"),
    },
    tags=["kfp-mlops", "kubeflow"],
) as dag:
    KfpPipelineOperator(
        task_id="train_on_kubeflow",
        pipeline="training",
        host="{{ var.value.get('kfp_host', 'http://ml-pipeline.kubeflow:8888') }}",
        image="{{ var.value.get('kfp_image', 'ghcr.io/your-org/kfp-mlops:0.1.0') }}",
        arguments={
            "data": "{{ params.data }}",
            "target": "{{ params.target }}",
            "model_name": "{{ params.model_name }}",
        },
        experiment="airflow",
        deferrable=True,
    )
