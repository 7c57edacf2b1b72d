"""Apache Airflow 3 integration: the suite's life cycle as an Airflow DAG, and an
operator that runs the suite's compiled pipelines on Kubeflow and waits for them.

Install with ``pip install 'kfp-mlops[airflow]'`` (no kserve: see docs/airflow.md).
"""
