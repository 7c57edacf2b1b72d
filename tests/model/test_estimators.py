"""Estimators by import path: real XGBoost and LightGBM inside the suite's Pipeline.

Trained, tuned, evaluated, written, loaded (with the package version check) and refused
clearly: a missing package names its extra, a class that is not an estimator or that
does the other task is refused by name, all before any fitting.
"""

import json
import sys

import pandas as pd
import pytest

from kfp_mlops.data.sources import bundled_table
from kfp_mlops.errors import DataError
from kfp_mlops.model.estimators import load_class
from kfp_mlops.model.evaluate import evaluate_model
from kfp_mlops.model.package import (
    METADATA_FILE,
    ModelIntegrityError,
    load_model_folder,
    write_model_folder,
)
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.model.tuning import make_candidates, parse_search_space, run_trial

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return bundled_table("penguins")


@pytest.mark.parametrize("estimator", ["xgboost", "xgboost.XGBClassifier",
                                       "lightgbm:LGBMClassifier"])
def test_text_labels_come_back_as_text(penguins, estimator, tmp_path):
    settings = TrainingSettings(target="species", task="classification", estimator=estimator,
                                params={"n_estimators": 30})
    model, metadata = train_model(penguins, settings)
    package = estimator.replace(":", ".").split(".")[0]
    assert metadata.estimator_package == package
    assert metadata.estimator_package_version == sys.modules[package].__version__
    assert metadata.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert metadata.params == {"n_estimators": 30}
    evaluation = evaluate_model(model, metadata, penguins, explain=True)
    assert evaluation.metrics["accuracy"] > 0.9
    assert evaluation.importance and evaluation.importance["columns"]
    assert evaluation.estimator_params["n_estimators"] == 30  # the wrapped one's own
    write_model_folder(model, metadata, tmp_path)
    loaded, _ = load_model_folder(tmp_path)
    assert set(loaded.predict(penguins.head(20))) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert loaded.predict_proba(penguins.head(2)).shape == (2, 3)


def test_regressors(tmp_path):
    diabetes = bundled_table("diabetes")
    for estimator in ("lightgbm", "xgboost.XGBRegressor"):
        settings = TrainingSettings(target="target", task="regression", estimator=estimator)
        model, metadata = train_model(diabetes, settings)
        assert evaluate_model(model, metadata, diabetes).metrics["r2"] > 0.5


def test_loader_refuses_another_package_version(penguins, tmp_path):
    settings = TrainingSettings(target="species", task="classification", estimator="xgboost",
                                params={"n_estimators": 5})
    model, metadata = train_model(penguins, settings)
    write_model_folder(model, metadata, tmp_path)
    raw = json.loads((tmp_path / METADATA_FILE).read_text())
    raw["estimator_package_version"] = "0.1.0"
    (tmp_path / METADATA_FILE).write_text(json.dumps(raw))
    with pytest.raises(ModelIntegrityError, match=r"trained with xgboost 0\.1\.0 but "):
        load_model_folder(tmp_path)
    raw["estimator_package"] = "not_a_package_here"
    (tmp_path / METADATA_FILE).write_text(json.dumps(raw))
    with pytest.raises(ModelIntegrityError, match="not_a_package_here is not installed"):
        load_model_folder(tmp_path)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "xgboost", None)  # as if it were not installed
    with pytest.raises(DataError, match=r"pip install 'kfp-mlops\[xgboost\]'"):
        TrainingSettings(estimator="xgboost.XGBClassifier")
    with pytest.raises(DataError, match=r"pip install somepkg\b"):
        load_class("somepkg.models:Thing")


@pytest.mark.parametrize("path, message", [
    ("json.dumps", "not a class"),
    ("collections.OrderedDict", "lacks fit, predict, get_params, set_params"),
    ("xgboost.NoSuchModel", "has no 'NoSuchModel'"),
    ("xgboost", None),  # the alias: fine
    ("sklearn.preprocessing.StandardScaler", "lacks predict"),
    ("notapath", "not available"),
])
def test_refused_before_any_work(path, message):
    if message is None:
        TrainingSettings(estimator=path)
        return
    with pytest.raises(DataError, match=message):
        TrainingSettings(estimator=path)


def test_regressor_for_classification_is_refused():
    with pytest.raises(DataError, match="is a regressor, but the task is classification"):
        TrainingSettings(task="classification", estimator="xgboost.XGBRegressor")
    with pytest.raises(DataError, match="is a classifier, but the task is regression"):
        TrainingSettings(task="regression", estimator="lightgbm.LGBMClassifier")


def test_any_sklearn_compatible_class_by_path(penguins):
    settings = TrainingSettings(target="species", task="classification",
                                estimator="sklearn.tree:DecisionTreeClassifier",
                                params={"max_depth": 3})
    model, metadata = train_model(penguins, settings)
    assert metadata.estimator == "DecisionTreeClassifier"
    assert metadata.estimator_package is None  # scikit-learn's version is checked anyway
    assert evaluate_model(model, metadata, penguins).metrics["accuracy"] > 0.9


@pytest.mark.parametrize("estimator, key", [("xgboost", "max_depth"),
                                            ("lightgbm.LGBMClassifier", "num_leaves")])
def test_tuning_has_search_spaces(penguins, estimator, key):
    space = parse_search_space(None, "classification", estimator)
    assert key in space
    settings = TrainingSettings(target="species", task="classification", estimator=estimator,
                                n_trials=2, cv_folds=2)
    candidates = make_candidates(settings)
    assert len(candidates) == 2
    result = run_trial(penguins, settings.with_params({**candidates[0], "n_estimators": 20}))
    assert result.score > 0.8
    with pytest.raises(DataError, match="not a parameter of"):
        parse_search_space('{"no_such_param": [1, 2]}', "classification", estimator)


def test_tuning_pool_runs_xgboost_trials(penguins):
    """The local shape: every candidate's folds in a process pool (OpenMP in workers)."""
    from kfp_mlops.model.tuning import run_trials, select_best

    settings = TrainingSettings(target="species", task="classification", estimator="xgboost",
                                n_trials=2, cv_folds=2, search_space={"max_depth": [2, 4]})
    results = run_trials(penguins, settings, make_candidates(settings), workers=2)
    assert sorted(r.params["max_depth"] for r in results) == [2, 4]
    assert select_best(results).score > 0.9
