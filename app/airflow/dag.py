"""The training life cycle as an Apache Airflow 3 DAG (TaskFlow), one task per KFP step.

ingest -> check -> statistics -> validate -> data_gate (short-circuit)
  -> split -> train -> evaluate -> bless -> model_gate (short-circuit)
     -> publish (registry, stage ``staging``) and model_card

The tasks call :mod:`kfp_mlops.app.airflow.steps`, which call the same core functions as
the KFP components, against the same store: a model this DAG publishes is listed,
promoted and served by ``kfp-mlops models`` and ``kfp-mlops serve``. A gate is a
short-circuit task: when it fails it logs ``<gate> gate FAILED: <reason>`` and every
task after it is skipped (KFP's ``dsl.If`` / ``dsl.Else`` with ``skip-step``).

Run parameters are DAG ``params`` (override them with ``--conf`` or the trigger form).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, dag, get_current_context, task

from kfp_mlops.app.airflow import steps
from kfp_mlops.app.airflow.params import param_schemas
from kfp_mlops.model.run_parameters import default

DAG_ID = "kfp_mlops_training"
log = logging.getLogger(__name__)


def training_params(
    data: str = default("data"), target: str = default("target"),
    model_name: str = default("model_name"), store: str = "",
) -> dict[str, Param]:
    """The DAG's run parameters (the KFP training pipeline's, under the same names).

    Built from :func:`kfp_mlops.app.airflow.params.param_schemas`, which takes names,
    defaults and descriptions from the run parameters. ``store`` empty means
    ``$KFP_MLOPS_STORE`` or ``./mlops-store`` on the worker, as for the CLI; a relative
    folder is made absolute once, by ``ingest``.
    """
    schemas = param_schemas(data=data, target=target, model_name=model_name, store=store)
    return {name: Param(**schema) for name, schema in schemas.items()}


def _context() -> tuple[dict[str, Any], str]:
    """The run's params and the Airflow run id."""
    context = get_current_context()
    return dict(context["params"]), str(context["run_id"])


def lineage_id(dag_id: str, run_id: str) -> str:
    """What the registry records as the run that made a version: ``airflow:<dag>/<run>``."""
    return f"airflow:{dag_id}/{run_id}"


def _files(ingested: dict[str, Any]) -> steps.RunFiles:
    return steps.RunFiles(**ingested["files"])


def gate_passed(gate: str, verdict: dict[str, Any]) -> bool:
    """Log the gate's verdict and reason; the short-circuit skips the rest when False."""
    if verdict["passed"]:
        log.info("%s gate passed: %s", gate, verdict["reason"])
        return True
    log.warning("%s gate FAILED, skipping every later task: %s", gate, verdict["reason"])
    return False


def build_training_dag(
    dag_id: str = DAG_ID,
    *,
    schedule: Any = None,
    start_date: datetime | None = None,
    data: str = default("data"),
    target: str = default("target"),
    model_name: str = default("model_name"),
    store: str = "",
    **dag_kwargs: Any,
) -> DAG:
    """Build the training DAG; the keyword arguments set the params' defaults.

    ``schedule`` is any Airflow schedule (``None``: triggered only, ``"@daily"``, a
    cron or an asset); ``dag_kwargs`` go to the DAG as they are (``default_args``, ...).
    """

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=start_date or datetime(2025, 1, 1),
        catchup=False,
        max_active_runs=1,  # two runs would race for the same champion
        params=training_params(data, target, model_name, store),
        tags=["kfp-mlops", "training"],
        doc_md=__doc__,
        **dag_kwargs,
    )
    def training() -> None:
        @task
        def ingest() -> dict[str, Any]:
            params, run_id = _context()
            store = params["store"] or _default_store()
            files = steps.RunFiles.for_run(_absolute(store), dag_id, run_id)
            result = steps.ingest(files, params["data"])
            log.info("dataset version %s (%s rows, new: %s) in %s", result["dataset_version"],
                     result["rows"], result["new_version"], files.store_uri)
            return {**result, "files": {"store_uri": files.store_uri, "prefix": files.prefix}}

        @task
        def check(ingested: dict[str, Any]) -> dict[str, Any]:
            params, _ = _context()
            return steps.check(_files(ingested), ingested, params["data"], params["target"],
                               params["task"], params["model_name"])

        @task
        def statistics(ingested: dict[str, Any]) -> str:
            return steps.statistics(_files(ingested), ingested)

        @task
        def validate(ingested: dict[str, Any], checked: dict[str, Any],
                     stats_key: str) -> dict[str, Any]:
            params, _ = _context()
            verdict = steps.validate(_files(ingested), stats_key, checked["model_name"],
                                     params["update_schema"], params["warn_only"])
            for anomaly in verdict["anomalies"]:
                log.warning("%s", anomaly)
            log.info("data report: %s", verdict["report"])
            return verdict

        @task.short_circuit
        def data_gate(verdict: dict[str, Any]) -> bool:
            return gate_passed("data (validate)", verdict)

        @task
        def split(ingested: dict[str, Any], checked: dict[str, Any]) -> dict[str, Any]:
            params, _ = _context()
            return steps.split(_files(ingested), ingested, checked, params["test_size"],
                               params["seed"])

        @task
        def train(ingested: dict[str, Any], checked: dict[str, Any],
                  splits: dict[str, Any]) -> dict[str, Any]:
            params, _ = _context()
            return steps.train(_files(ingested), ingested, checked, splits, params["estimator"],
                               steps.estimator_params(params), params["seed"])

        @task
        def evaluate(ingested: dict[str, Any], model: dict[str, Any],
                     splits: dict[str, Any]) -> dict[str, Any]:
            result = steps.evaluate(_files(ingested), model, splits)
            log.info("metrics on %s held-out rows: %s", result["rows"], result["metrics"])
            return result

        @task
        def bless(ingested: dict[str, Any], evaluated: dict[str, Any], splits: dict[str, Any],
                  checked: dict[str, Any]) -> dict[str, Any]:
            params, _ = _context()
            return steps.bless(_files(ingested), evaluated, splits, checked,
                               params["quality_metric"], params["quality_threshold"],
                               params["blessing_policy"])

        @task.short_circuit
        def model_gate(verdict: dict[str, Any]) -> bool:
            return gate_passed("model (bless)", verdict)

        @task
        def publish(ingested: dict[str, Any], model: dict[str, Any], evaluated: dict[str, Any],
                    blessed: dict[str, Any], checked: dict[str, Any]) -> dict[str, Any]:
            params, run_id = _context()
            published = steps.publish(_files(ingested), model, evaluated, blessed, checked,
                                      ingested, lineage_id(dag_id, run_id), params["stage"])
            log.info("published %s version %s (%s) to %s", published["model_name"],
                     published["version"], published["stage"], published["model_uri"])
            return published

        @task
        def model_card(ingested: dict[str, Any], model: dict[str, Any],
                       evaluated: dict[str, Any], blessed: dict[str, Any]) -> dict[str, Any]:
            params, _ = _context()
            card = steps.model_card(_files(ingested), model, evaluated, blessed,
                                    params["intended_use"])
            log.info("model card: %s", card["card"])
            return card

        ingested = ingest()
        checked = check(ingested)
        data_verdict = validate(ingested, checked, statistics(ingested))
        splits = split(ingested, checked)
        data_gate(data_verdict) >> splits
        model = train(ingested, checked, splits)
        evaluated = evaluate(ingested, model, splits)
        blessed = bless(ingested, evaluated, splits, checked)
        gate = model_gate(blessed)
        gate >> [publish(ingested, model, evaluated, blessed, checked),
                 model_card(ingested, model, evaluated, blessed)]

    return training()


def _default_store() -> str:
    from kfp_mlops.storage import default_store_uri

    return default_store_uri()


def _absolute(store: str) -> str:
    """A relative local folder, resolved once so that every task writes to the same one."""
    if "://" in store:
        return store
    from pathlib import Path

    return str(Path(store).expanduser().resolve())
