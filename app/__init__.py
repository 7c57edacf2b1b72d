"""The application layer: what people and schedulers run (``kfp_mlops.app``).

The ``kfp-mlops`` CLI (``cli``, ``commands``, ``console``), cluster automation (``automation``:
compile, upload, run and schedule on Kubeflow) and the Airflow integration (``airflow``).
It may import every layer below it; nothing below imports it. docs/architecture.md.
"""
