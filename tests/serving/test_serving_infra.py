"""Infra validation against the real server: bless a faithful model, refuse the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kfp_mlops.model.package import MODEL_FILE
from kfp_mlops.serving.infra_validation import validate_serving
from tests.serving.noisy_model import NoisyRegressor
from tests.serving.serving_models import write_regressor

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]  # so the server can import tests.serving.noisy_model


def test_blesses_a_classifier_served_faithfully(classifier_dir, penguins_rows):
    result = validate_serving(classifier_dir, penguins_rows, request_rows=40)
    assert result.passed, result.reason + result.server_log_tail
    assert result.rows == len(penguins_rows)
    assert result.requests == 3 * -(-len(penguins_rows) // 40)
    assert not any(result.mismatches.values())


def test_blesses_a_regressor(regressor_dir, diabetes_rows):
    result = validate_serving(regressor_dir, diabetes_rows.assign(target=1.0))
    assert result.passed, result.reason


def test_refuses_a_model_that_serves_different_predictions(tmp_path, diabetes_rows):
    folder = write_regressor(tmp_path / "noisy", NoisyRegressor())
    result = validate_serving(folder, diabetes_rows, env={"PYTHONPATH": str(ROOT)})
    assert not result.passed
    assert "differ" in result.reason
    assert result.mismatches["v1"] > 0


def test_refuses_a_folder_with_two_model_files(tmp_path, classifier_dir, penguins_rows):
    folder = tmp_path / "two"
    shutil.copytree(classifier_dir, folder)
    shutil.copy(folder / MODEL_FILE, folder / "model_old.pkl")
    result = validate_serving(folder, penguins_rows)
    assert not result.passed
    assert "exactly one model file" in result.reason


def test_refuses_a_tampered_model_file(tmp_path, classifier_dir, penguins_rows):
    folder = tmp_path / "tampered"
    shutil.copytree(classifier_dir, folder)
    with open(folder / MODEL_FILE, "ab") as handle:
        handle.write(b"\0")
    result = validate_serving(folder, penguins_rows)
    assert not result.passed
    assert "sha256" in result.reason


def test_refuses_rows_without_the_features(classifier_dir, penguins_rows):
    result = validate_serving(classifier_dir, penguins_rows.drop(columns=["sex"]))
    assert not result.passed and "sex" in result.reason
