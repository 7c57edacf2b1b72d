"""The training life cycle as plain step functions: what each Airflow task calls.

Each function calls the same core function as the KFP component of the same name
(``components/``) and returns a small JSON-ready dict for XCom. Files never travel
through XCom: a step downloads its inputs from the store into a temporary folder,
runs, and uploads its outputs under the run's prefix ``runs/airflow/<dag>/<run>/``, so
the DAG works on any executor whose workers reach the store (a local folder on one
machine, S3 for distributed workers). The dataset itself is the content-addressed
version ``ingest`` published (``datasets/<version>/data.parquet``), not a copy.

No Airflow import here: the steps are tested without Airflow, and ``dag.py`` wraps them.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_mlops.errors import DataError
from kfp_mlops.model.run_parameters import default

RUNS_PREFIX = "runs/airflow"
MODEL_FILES = ("model.joblib", "metadata.json")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class RunFiles:
    """Where one DAG run keeps its intermediate files: ``store`` and a key prefix in it."""

    store_uri: str
    prefix: str

    @classmethod
    def for_run(cls, store_uri: str, dag_id: str, run_id: str) -> RunFiles:
        """The run's folder; ids are made key-safe (Airflow run ids hold ``:`` and ``+``)."""
        if not store_uri:
            raise DataError("no store given; pass params.store, e.g. ./mlops-store or "
                            "s3://bucket/prefix")
        parts = [_UNSAFE.sub("_", part).strip("_") or "run" for part in (dag_id, run_id)]
        return cls(store_uri, f"{RUNS_PREFIX}/{parts[0]}/{parts[1]}")

    def key(self, name: str) -> str:
        """The store key of ``name`` in this run's folder."""
        return f"{self.prefix}/{name}"

    def store(self) -> Any:
        """Open the store (a new client per call: tasks may run in other processes)."""
        from kfp_mlops.storage import open_store

        return open_store(self.store_uri)

    def put(self, name: str, path: str | Path) -> str:
        """Upload a local file as ``name``; return its key."""
        key = self.key(name)
        self.store().upload_file(key, path)
        return key

    def get(self, key: str, folder: Path) -> Path:
        """Download ``key`` into ``folder`` under its own file name."""
        path = folder / key.rsplit("/", 1)[-1]
        self.store().download_file(key, path)
        return path

    def dataset(self, version: str, folder: Path) -> Path:
        """The ingested dataset version as a local Parquet file (sha256 checked)."""
        from kfp_mlops.data.versions import download_dataset

        return download_dataset(self.store(), version, folder / "data.parquet")

    def get_model(self, prefix: str, folder: Path) -> Path:
        """Download the model folder stored at ``prefix``."""
        model_dir = folder / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            self.store().download_file(f"{prefix}/{name}", model_dir / name)
        return model_dir


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-airflow-") as tmp:
        yield Path(tmp)


def ingest(files: RunFiles, source: str) -> dict[str, Any]:
    """Read the source and publish it as a dataset version in the store (``ingest``)."""
    from kfp_mlops.data.ingest import ingest_to_parquet

    with _workdir() as tmp:
        result = ingest_to_parquet(source, tmp / "data.parquet", files.store_uri)
    return {"dataset_version": result.dataset_version, "data_sha256": result.sha256,
            "rows": result.rows, "columns": result.columns, "source_uri": result.source_uri,
            "new_version": result.new_version}


def check(files: RunFiles, ingested: dict[str, Any], source: str,
          target: str = default("target"), task: str = default("task"),
          model_name: str = default("model_name")) -> dict[str, Any]:
    """Fail unless the data can train a model; settle target, task and name (``check-data``)."""
    from kfp_mlops.data.bundled import default_target
    from kfp_mlops.data.checks import check_training_data
    from kfp_mlops.data.ingest import dataset_columns, read_dataset
    from kfp_mlops.model.registry import model_name_for, validate_name

    target = default_target(source) if target in ("", "auto") else target
    if not target:
        raise DataError(f"no target column given for {source!r}; pass params.target COLUMN")
    with _workdir() as tmp:
        path = files.dataset(ingested["dataset_version"], tmp)
        columns = dataset_columns(path)
        frame = read_dataset(path, columns=[target] if target in columns else [])
    checked = check_training_data(frame, target, None if task == "auto" else task,
                                  columns=columns)
    name = model_name_for(source) if model_name in ("", "auto") else validate_name(model_name)
    return {"target": target, "task": checked.task, "rows": checked.rows, "model_name": name}


def statistics(files: RunFiles, ingested: dict[str, Any]) -> str:
    """Per-column statistics of the dataset as JSON in the run folder (``compute-statistics``)."""
    from kfp_mlops.data.stats import compute_statistics

    with _workdir() as tmp:
        stats = compute_statistics(files.dataset(ingested["dataset_version"], tmp))
        out = tmp / "statistics.json"
        out.write_text(stats.to_json())
        return files.put("statistics.json", out)


def validate(files: RunFiles, statistics_key: str, schema_name: str,
             update_schema: bool = False, warn_only: bool = False) -> dict[str, Any]:
    """The data gate's verdict against the stored schema, with its reports (``validate-data``)."""
    from kfp_mlops.data.gate import validate_against_store
    from kfp_mlops.data.stats import DatasetStatistics

    with _workdir() as tmp:
        stats = DatasetStatistics.from_json(files.get(statistics_key, tmp).read_text())
        result = validate_against_store(
            stats, files.store_uri, schema_name, update_schema=update_schema,
            warn_only=warn_only, report_path=tmp / "data-report.html",
            summary_path=tmp / "data-summary.md", run_id=files.prefix,
        )
        report = files.put("data-report.html", tmp / "data-report.html")
        files.put("data-summary.md", tmp / "data-summary.md")
    return {"passed": result.passed, "reason": result.reason,
            "anomalies": [str(a) for a in result.validation.anomalies]
            if result.validation else [],
            "report": files.store().uri_for(report)}


def split(files: RunFiles, ingested: dict[str, Any], checked: dict[str, Any],
          test_size: float = default("test_size"), seed: int = default("seed")
          ) -> dict[str, Any]:
    """Seeded train/test split, stratified by class (``split-data``)."""
    from kfp_mlops.data.split import split_file

    with _workdir() as tmp:
        data = files.dataset(ingested["dataset_version"], tmp)
        train_rows, test_rows = split_file(
            data, tmp / "train.parquet", tmp / "test.parquet", checked["target"],
            checked["task"], float(test_size), int(seed),
        )
        return {"train": files.put("train.parquet", tmp / "train.parquet"),
                "test": files.put("test.parquet", tmp / "test.parquet"),
                "train_rows": train_rows, "test_rows": test_rows}


def train(files: RunFiles, ingested: dict[str, Any], checked: dict[str, Any],
          splits: dict[str, Any], estimator: str = default("estimator"),
          params: str = default("params"), seed: int = default("seed")) -> dict[str, Any]:
    """Fit the scikit-learn Pipeline; the model folder goes to the run folder (``train``)."""
    from kfp_mlops.model import steps
    from kfp_mlops.model.settings import TrainingSettings

    settings = TrainingSettings.from_parameters(
        target=checked["target"], task=checked["task"], estimator=estimator, params=params,
        seed=seed)
    with _workdir() as tmp:
        model_dir = tmp / "model"
        metadata = steps.train(
            files.get(splits["train"], tmp), model_dir, settings,
            data_sha256=ingested["data_sha256"], dataset_version=ingested["dataset_version"],
            model_name=checked["model_name"],
        )
        for name in MODEL_FILES:
            files.put(f"model/{name}", model_dir / name)
    return {"model": files.key("model"), "estimator": metadata.estimator,
            "model_sha256": metadata.model_sha256}


def estimator_params(params: Mapping[str, Any]) -> str:
    """The run's estimator parameters: ``params``, or the deprecated ``estimator_params``.

    The DAG used to call them ``estimator_params``; a trigger (``--conf``) or DAG
    file that still does keeps working, with a warning in the task log.
    ``params`` wins when both differ from their defaults.
    """
    old = params.get("estimator_params")
    if old is None:
        return str(params.get("params", default("params")))
    message = ("the DAG param 'estimator_params' is deprecated and will be removed in a "
               "later release; "
               "pass the estimator parameters as 'params', as the KFP pipelines do")
    # The log line is what a task's reader sees (Python hides DeprecationWarning there).
    logging.getLogger(__name__).warning("%s", message)
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    given = params.get("params", default("params"))
    return str(old if given == default("params") else given)


def evaluate(files: RunFiles, model: dict[str, Any], splits: dict[str, Any]) -> dict[str, Any]:
    """Score the model on the held-out rows; keep the evaluation JSON (``evaluate``)."""
    from kfp_mlops.model import steps

    with _workdir() as tmp:
        result, _ = steps.evaluate(files.get_model(model["model"], tmp),
                                   files.get(splits["test"], tmp), explain=True)
        out = tmp / "evaluation.json"
        out.write_text(json.dumps(result.to_dict()))
        key = files.put("evaluation.json", out)
    return {"metrics": {k: float(v) for k, v in result.metrics.items()}, "evaluation": key,
            "rows": result.rows}


def bless(files: RunFiles, evaluated: dict[str, Any], splits: dict[str, Any],
          checked: dict[str, Any], quality_metric: str = default("quality_metric"),
          quality_threshold: str = default("quality_threshold"),
          policy: str = default("blessing_policy")) -> dict[str, Any]:
    """The model gate: thresholds and the production champion on the same rows (``bless-model``).

    The verdict file is the one the KFP component writes (``kfp_mlops.gates``), so
    ``publish`` re-checks it the same way.
    """
    from kfp_mlops.model.champion import model_gate
    from kfp_mlops.model.settings import BlessingSettings

    name, task = checked["model_name"], checked["task"]
    spec = BlessingSettings.from_parameters(quality_metric, quality_threshold, policy).spec(task)
    with _workdir() as tmp:
        decision = model_gate(files.store_uri, name, files.get(splits["test"], tmp),
                              dict(evaluated["metrics"]), task, spec, tmp / "blessing.json")
        key = files.put("blessing.json", tmp / "blessing.json")
    return {"passed": decision.passed, "reason": decision.reason, "blessing": key,
            "policy": spec}


def publish(files: RunFiles, model: dict[str, Any], evaluated: dict[str, Any],
            blessed: dict[str, Any], checked: dict[str, Any], ingested: dict[str, Any],
            run_id: str, stage: str = "staging") -> dict[str, Any]:
    """Publish the blessed model as a new registry version (``publish``).

    The blessing file is re-read and publishing refused unless it passed, whatever the
    DAG's wiring, exactly as the KFP component does.
    """
    from kfp_mlops.gates import require_passed
    from kfp_mlops.model.publish import publish_model

    name = checked["model_name"]
    with _workdir() as tmp:
        verdict = require_passed(files.get(blessed["blessing"], tmp), "model (bless-model)",
                                 f"publish {name!r}")
        evaluation = json.loads(files.get(evaluated["evaluation"], tmp).read_text())
        published = publish_model(
            files.get_model(model["model"], tmp), evaluated["metrics"], files.store_uri, name,
            stage=stage, reason=blessed["reason"], run_id=run_id,
            dataset_version=ingested["dataset_version"],
            blessing_json=json.dumps(verdict["blessing"]),
            estimator=evaluation.get("estimator"),
        )
    return {"model_uri": published.uri, "model_name": published.name,
            "version": published.version, "stage": stage}


def model_card(files: RunFiles, model: dict[str, Any], evaluated: dict[str, Any],
               blessed: dict[str, Any], intended_use: str = "auto") -> dict[str, Any]:
    """Render the model card (HTML) and its Markdown summary into the run folder."""
    from kfp_mlops.gates import read_verdict
    from kfp_mlops.model.card import card_step

    with _workdir() as tmp:
        verdict = read_verdict(files.get(blessed["blessing"], tmp), "model (bless-model)")
        card_step(files.get_model(model["model"], tmp), files.get(evaluated["evaluation"], tmp),
                  tmp / "model-card.html", tmp / "model-card.md",
                  json.dumps(verdict["blessing"]), intended_use)
        card = files.put("model-card.html", tmp / "model-card.html")
        files.put("model-card.md", tmp / "model-card.md")
    return {"card": files.store().uri_for(card)}
