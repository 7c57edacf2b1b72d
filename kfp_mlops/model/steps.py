"""Path-level model steps: what each KFP component calls, testable without KFP."""

from __future__ import annotations

from pathlib import Path

from kfp_mlops.data.ingest import read_dataset
from kfp_mlops.model.evaluate import Evaluation, evaluate_model
from kfp_mlops.model.identity import training_fingerprint
from kfp_mlops.model.package import ModelMetadata, load_model_folder, write_model_folder
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model


def train_step(
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
    model, metadata = train_model(read_dataset(train_path), settings)
    metadata.training_fingerprint = training_fingerprint(
        train_path, settings, metadata.params,
        (metadata.estimator_package, metadata.estimator_package_version))
    metadata.data_sha256 = data_sha256
    metadata.dataset_version = dataset_version
    metadata.name = model_name
    return write_model_folder(model, metadata, model_dir)


def evaluate_step(
    model_dir: str | Path, test_path: str | Path, explain: bool = False
) -> tuple[Evaluation, ModelMetadata]:
    """Evaluate the model folder on the held-out Parquet at ``test_path``.

    ``explain`` adds what the model card shows besides the metrics (see ``evaluate_model``)
    and fits the performance estimator on the same rows (``Evaluation.estimator``: the
    calibration or loss model that estimates performance before labels arrive).
    """
    from kfp_mlops.model.estimate import fit_estimator

    model, metadata = load_model_folder(model_dir)
    frame = read_dataset(test_path)
    evaluation = evaluate_model(model, metadata, frame, explain=explain)
    if explain:
        evaluation.estimator = fit_estimator(model, metadata, frame)
    return evaluation, metadata
