"""What each model component calls: one function per component, named after it.

``components/model/*.py``'s component ``X`` calls :func:`X` here with the artifacts' paths
and its parameters, and so do ``check-data`` and ``validate-data``, whose steps ask the
registry (the model's name, the production version's target); the component only
adds KFP's metadata, metrics and outputs. ``skip-step`` and ``fixed-params`` compute
nothing and have no step. Each step imports what it uses inside it: a task imports only
its own step's libraries (``check-data`` needs no scikit-learn; the local runner's fork
server warms them by stage, ``app/local/runner.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from kfp_mlops.data.gate import DataGateResult
    from kfp_mlops.model.champion import GateDecision
    from kfp_mlops.model.evaluate import Evaluation
    from kfp_mlops.model.package import ModelMetadata
    from kfp_mlops.model.registry import ModelVersion
    from kfp_mlops.model.settings import BlessingSettings, TrainingSettings
    from kfp_mlops.model.tuning import TrialResult


class DataCheck(NamedTuple):
    """What ``check-data`` passes on."""

    target: str
    task: str
    rows: int
    columns: int
    model_name: str


def check_data(dataset_path: str | Path, source: str, target: str = "auto",
               task: str = "auto", model_name: str = "auto") -> DataCheck:
    """Fail fast unless the data can train a model: target present, enough rows, 2+ classes.

    ``auto``: the bundled data set's target, the task the target implies, the registry
    name derived from ``source``.
    """
    from kfp_mlops.data.bundled import default_target
    from kfp_mlops.data.checks import check_training_data
    from kfp_mlops.data.ingest import dataset_columns, read_dataset
    from kfp_mlops.data.sources import DataError
    from kfp_mlops.model.registry import model_name_for, validate_name

    target = default_target(source) if target == "auto" else target
    if not target:
        raise DataError(f"no target column given for {source!r}; pass --target COLUMN")
    # Only the target column is read: the checks need the other columns' names only.
    columns = dataset_columns(dataset_path)
    frame = read_dataset(dataset_path, columns=[target] if target in columns else [])
    checked = check_training_data(frame, target, None if task == "auto" else task, columns=columns)
    name = model_name_for(source) if model_name == "auto" else validate_name(model_name)
    return DataCheck(target, checked.task, checked.rows, checked.columns, name)


def validate_data(statistics_path: str | Path, store_uri: str, schema_name: str,
                  report_path: str | Path, summary_path: str | Path,
                  validation_path: str | Path, *, update_schema: bool = False,
                  warn_only: bool = False, run_id: str | None = None,
                  check_only: bool = False) -> DataGateResult:
    """The data gate on the statistics JSON; the anomalies and verdict go to ``validation_path``.

    ``validation_path`` holds ``{"validation": null}`` when nothing was checked (monitoring
    without a stored schema). Monitoring a batch (``check_only``), its missing target is
    labels pending, not bad data: the target is the production version's.
    """
    import json
    from functools import partial

    from kfp_mlops.data.gate import validate_against_store
    from kfp_mlops.data.stats import DatasetStatistics

    stats = DatasetStatistics.from_json(Path(statistics_path).read_text())
    result = validate_against_store(
        stats, store_uri, schema_name, update_schema=update_schema, warn_only=warn_only,
        report_path=report_path, summary_path=summary_path, run_id=run_id,
        check_only=check_only,
        pending_target=partial(_production_target, store_uri, schema_name),
    )
    checked = result.validation
    with open(validation_path, "w") as handle:
        json.dump({"validation": checked.to_dict() if checked else None}, handle)
    return result


def _production_target(store_uri: str, name: str) -> str | None:
    """The target column of model ``name``'s production version (None: no such version)."""
    from kfp_mlops.model.registry import Registry, RegistryError
    from kfp_mlops.storage import open_store

    try:
        return Registry(open_store(store_uri)).get(f"{name}@production").metadata.target
    except RegistryError:
        return None


def train(
    train_path: str | Path,
    model_dir: str | Path,
    settings: TrainingSettings,
    *,
    data_sha256: str | None = None,
    dataset_version: str | None = None,
    model_name: str | None = None,
) -> ModelMetadata:
    """Train on the Parquet at ``train_path``; write the model folder to ``model_dir``.

    ``data_sha256``, ``dataset_version`` and ``model_name`` are lineage, recorded only.
    """
    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model.identity import training_fingerprint
    from kfp_mlops.model.package import write_model_folder
    from kfp_mlops.model.train import train_model

    model, metadata = train_model(read_dataset(train_path), settings)
    metadata.training_fingerprint = training_fingerprint(
        train_path, settings, metadata.params,
        (metadata.estimator_package, metadata.estimator_package_version))
    metadata.data_sha256 = data_sha256
    metadata.dataset_version = dataset_version
    metadata.name = model_name
    return write_model_folder(model, metadata, model_dir)


def evaluate(
    model_dir: str | Path, test_path: str | Path, explain: bool = False
) -> tuple[Evaluation, ModelMetadata]:
    """Evaluate the model folder on the held-out Parquet at ``test_path``.

    ``explain`` adds what the model card shows besides the metrics (see ``evaluate_model``)
    and fits the performance estimator on the same rows (``Evaluation.estimator``: the
    calibration or loss model that estimates performance before labels arrive).
    """
    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model.evaluate import evaluate_model
    from kfp_mlops.model.package import load_model_folder

    model, metadata = load_model_folder(model_dir)
    frame = read_dataset(test_path)
    evaluation = evaluate_model(model, metadata, frame, explain=explain)
    if explain:
        from kfp_mlops.model.estimate import fit_estimator

        evaluation.estimator = fit_estimator(model, metadata, frame)
    return evaluation, metadata


def bless_model(model_dir: str | Path, metrics: dict[str, float], test_path: str | Path,
                store_uri: str, model_name: str, task: str, settings: BlessingSettings,
                comparison_path: str | Path, blessing_path: str | Path,
                force_new_version: bool = False) -> GateDecision:
    """The model gate: thresholds and the production champion on the same held-out rows.

    Writes the verdict file publish and deploy re-check, and the comparison (Markdown).
    A challenger identical to a published version (same training fingerprint) is not
    blessed again, unless ``force_new_version``.
    """
    from kfp_mlops.model.champion import model_gate
    from kfp_mlops.model.package import read_metadata

    fingerprint = None if force_new_version else read_metadata(model_dir).training_fingerprint
    # A metric the task does not report fails here, named, before the identity check.
    settings.check_reported(task)
    decision = model_gate(store_uri, model_name, test_path, metrics, task, settings.spec(task),
                          blessing_path, fingerprint)
    Path(comparison_path).write_text(f"{decision.markdown}\n")
    return decision


def publish(model_dir: str | Path, metrics: dict[str, float], blessing_path: str | Path,
            evaluation_path: str | Path | None, store_uri: str, model_name: str,
            **options: Any) -> ModelVersion:
    """Re-check the blessing (whatever the wiring), then publish a new registry version.

    The evaluation's performance estimator, when given, is stored with the version.
    ``options`` are :func:`kfp_mlops.model.publish.publish_model`'s keywords.
    """
    from kfp_mlops.gates import require_passed
    from kfp_mlops.model.publish import publish_model

    verdict = require_passed(blessing_path, "model (bless-model)", f"publish {model_name!r}")
    estimator = None
    if evaluation_path is not None:
        estimator = json.loads(Path(evaluation_path).read_text(encoding="utf-8")).get("estimator")
    return publish_model(model_dir, metrics, store_uri, model_name,
                         blessing_json=json.dumps(verdict["blessing"]), estimator=estimator,
                         **options)


def model_card(model_dir: str | Path, evaluation_path: str | Path, card_path: str | Path,
               summary_path: str | Path, blessing_path: str | Path | None = None,
               intended_use: str = "auto", version: int | None = None,
               run_id: str | None = None) -> ModelMetadata:
    """Render the model card (HTML) and its Markdown summary, with the blessing if given."""
    from kfp_mlops.gates import read_verdict
    from kfp_mlops.model.card import card_step

    comparison = "{}" if blessing_path is None else json.dumps(
        read_verdict(blessing_path, "model (bless-model)")["blessing"])
    return card_step(model_dir, evaluation_path, card_path, summary_path, comparison,
                     intended_use, version=version, run_id=run_id)


def make_candidates(settings: TrainingSettings) -> list[str]:
    """The parameter sets to try, each a JSON object (sorted keys)."""
    from kfp_mlops.model import tuning

    return [json.dumps(c, sort_keys=True) for c in tuning.make_candidates(settings)]


def run_trial(train_path: str | Path, settings: TrainingSettings, params: str,
              store_uri: str = "", run_id: str = "") -> tuple[TrialResult, str | None]:
    """Cross-validate one parameter set; on a cluster also put it in the fan-in prefix.

    Returns the result and where it was put (None without ``store_uri`` and ``run_id``).
    """
    from kfp_mlops.fanin import item_name, put_text
    from kfp_mlops.model.tuning import run_trial_on_file

    result = run_trial_on_file(train_path, settings)
    where = None
    if store_uri and run_id:
        where = put_text(store_uri, run_id, "run-trial", item_name(params), result.to_json())
    return result, where


def run_trials(train_path: str | Path, settings: TrainingSettings, candidates: Sequence[str],
               workers: int = 0) -> tuple[list[TrialResult], str]:
    """Cross-validate every candidate in one process pool (what a local run uses).

    Returns the results, in the candidates' order, and the pool's timing in one line.
    """
    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model import tuning

    stats = tuning.TuningStats()
    results = tuning.run_trials(read_dataset(train_path), settings, candidates, workers, stats)
    return results, stats.describe()


def select_best(results: Sequence[str], candidates: Sequence[str] | None = None,
                store_uri: str = "", run_id: str = "") -> tuple[TrialResult, str]:
    """The trial with the highest score (ties: the first) and a Markdown table of all.

    Without ``results`` (a cluster's loop of ``run-trial`` pods) each candidate's result
    is read from the store's fan-in prefix; a missing one is named.
    """
    from kfp_mlops.fanin import gather_texts, item_name
    from kfp_mlops.model import tuning

    if not results:
        if not (store_uri and run_id and candidates):
            raise ValueError("select-best got no trial results and no store, run id and "
                             "candidates to read them from; wire run-trials' output, or "
                             "the trial loop's store and dsl.PIPELINE_JOB_ID_PLACEHOLDER")
        results = gather_texts(store_uri, run_id, "run-trial",
                               [item_name(c) for c in candidates])
    trials = [tuning.TrialResult.from_json(r) for r in results]
    best = tuning.select_best(trials)
    return best, tuning.summarize_trials(trials, best)
