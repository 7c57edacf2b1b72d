"""Apache Airflow 3 integration: the life cycle as a DAG, and Airflow driving Kubeflow.

``kfp_mlops.app.airflow.dag`` builds the training DAG from the core steps;
``kfp_mlops.app.airflow.operator`` submits a suite pipeline to a KFP host and waits for it.
Install with ``pip install 'kfp-mlops[airflow]'`` (no kserve: see docs/airflow.md).
"""
