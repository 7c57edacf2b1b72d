"""The training DAG's params as JSON schemas, from the run parameters (no Airflow import).

``dag.py`` turns each into an ``airflow.sdk.Param``; the schemas live here so that the
check that they match the pipelines' parameters (tests/test_settings_declared_once.py)
runs without Airflow, which cannot share an environment with kserve.
"""

from __future__ import annotations

from typing import Any

from kfp_mlops.model.run_parameters import RUN_PARAMETERS

# The KFP training pipeline's parameters the DAG takes, under the same names. Not here:
# namespace, canary_traffic_percent, model_registry (the DAG does not deploy), n_trials
# and search_space (no tuning branch), force_new_version.
PIPELINE_PARAMS = ("data", "target", "model_name", "store", "task", "estimator", "params",
                   "test_size", "seed", "quality_metric", "quality_threshold",
                   "blessing_policy", "update_schema", "warn_only")
# What the Airflow form says differently: no image to hold a path, another store default.
OWN_DESCRIPTIONS = {
    "data": "CSV/Parquet path or s3:// URI, or a bundled data set: penguins, breast_cancer, "
    "wine, iris, diabetes",
    "store": "store URI: a local folder or s3://bucket/prefix; empty: $KFP_MLOPS_STORE or "
    "./mlops-store",
}
# The DAG's own params (no pipeline has them).
OWN_PARAMS: dict[str, dict[str, Any]] = {
    "stage": {"default": "staging", "type": "string", "enum": ["staging", "none"],
              "description": "the registry stage publish gives the new version"},
    "intended_use": {"default": "auto", "type": "string",
                     "description": "the model card's intended use; auto: a sentence from "
                     "the data and task"},
}
# Old name -> new name, deprecated: the name this DAG gave ``params`` before it took the
# pipelines' name (steps.estimator_params reads it, with a deprecation warning).
DEPRECATED_PARAMS = {"estimator_params": "params"}
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
# Constraints the trigger form checks before a run starts.
_CONSTRAINTS = {"test_size": {"exclusiveMinimum": 0, "exclusiveMaximum": 1}}


def param_schemas(**defaults: Any) -> dict[str, dict[str, Any]]:
    """Every DAG param as ``Param`` keywords: default, description and JSON schema.

    ``defaults`` override the run parameters' (the DAG factory's ``data``, ``target``,
    ``model_name``, ``store``; the pipelines' ``store`` default is a cluster bucket).
    """
    schemas: dict[str, dict[str, Any]] = {}
    for name in PIPELINE_PARAMS:
        declared = RUN_PARAMETERS[name]
        schema = {
            "default": defaults.get(name, declared.default),
            "type": JSON_TYPES[declared.kind],
            "description": OWN_DESCRIPTIONS.get(name, declared.description),
            **_CONSTRAINTS.get(name, {}),
        }
        if declared.choices:
            schema["enum"] = list(declared.choices)
        schemas[name] = schema
    schemas.update({name: dict(schema) for name, schema in OWN_PARAMS.items()})
    for old, new in DEPRECATED_PARAMS.items():
        schemas[old] = {"default": None, "type": ["null", "string"],
                        "description": f"deprecated: the old name of {new} (a warning says "
                        f"so); use {new}"}
    return schemas
