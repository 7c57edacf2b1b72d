"""Many classes and rare classes: a refusal for hopeless targets, a warning naming the
rare classes, and a cheaper default that leaves ordinary data's model unchanged."""

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from kfp_mlops.data.checks import check_training_data
from kfp_mlops.data.sources import DataError, load_table
from kfp_mlops.model.features import plan_features, prepare_inputs
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import (
    BOOSTING_TREE_BUDGET,
    build_pipeline,
    class_count_defaults,
    rare_classes,
    train_model,
)


def labelled(labels, columns: int = 4, seed: int = 0) -> pd.DataFrame:
    """Numeric columns whose first one shifts with the class, so there is something to learn."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(len(labels), columns)),
                         columns=[f"x{i}" for i in range(columns)])
    codes = pd.factorize(labels)[0]
    frame["x0"] += codes * 0.5
    frame["y"] = labels
    return frame


def many_classes_with_rare_ones() -> pd.DataFrame:
    """60 classes: 50 of 40 rows, 10 of 2 to 5 rows (the middle ground the check lets by)."""
    rare = {f"rare{i}": 2 + i % 4 for i in range(10)}
    common = {f"c{i}": 40 for i in range(50)}
    labels = [name for name, n in {**common, **rare}.items() for _ in range(n)]
    return labelled(labels)


def fit(frame, **kwargs):
    with threadpool_limits(limits=1, user_api="openmp"):
        return train_model(frame, TrainingSettings.from_parameters(
            target="y", task="classification", **kwargs))


def test_500_classes_of_4_rows_are_refused_with_the_fix():
    labels = [f"product-{i}" for i in range(500) for _ in range(4)]
    with pytest.raises(DataError, match=r"500 classes in 2000 labelled rows.*fewer than 10 rows "
                                        r"per class.*need 5,000 rows or more.*group rare classes"):
        check_training_data(labelled(labels), "y")
    codes = np.repeat(np.arange(500), 4)
    with pytest.raises(DataError, match=r"500 classes.*--task regression"):
        check_training_data(labelled(codes), "y", task="classification")


def test_the_middle_ground_passes_the_check():
    checked = check_training_data(many_classes_with_rare_ones(), "y")
    assert checked.task == "classification" and len(checked.classes) == 60


def test_rare_classes_are_named_rarest_first():
    y = pd.Series(["a"] * 12 + ["b"] * 3 + ["c"] * 2 + ["d"] * 9)
    assert rare_classes(y) == {"c": 2, "b": 3, "d": 9}
    assert rare_classes(y, below=3) == {"c": 2}


def test_training_warns_naming_the_rare_classes(caplog):
    with caplog.at_level(logging.WARNING, logger="kfp_mlops.model.train"):
        fit(many_classes_with_rare_ones())
    warning = next(r.getMessage() for r in caplog.records if "training rows" in r.getMessage())
    assert warning.startswith("10 of 60 classes of target 'y' have fewer than 10 training rows")
    assert "'rare0' (2)" in warning and "'rare3' (5)" in warning
    assert "merge them into a broader class" in warning


def test_many_classes_cap_the_default_boosting_iterations(caplog):
    with caplog.at_level(logging.WARNING, logger="kfp_mlops.model.train"):
        model, metadata = fit(many_classes_with_rare_ones())
    iterations = BOOSTING_TREE_BUDGET // 60
    assert metadata.params == {"max_iter": iterations}  # recorded: card and fingerprint
    assert model.named_steps["estimator"].n_iter_ == iterations
    assert any(f"60 classes: gradient boosting fits one tree per class per iteration, so "
               f"max_iter is {iterations} instead of 100" in r.getMessage()
               for r in caplog.records)
    assert len(metadata.classes) == 60  # rare classes are still predicted, not merged


def test_the_users_choice_wins_over_the_many_classes_default():
    y = pd.Series([f"c{i}" for i in range(60)] * 10)
    assert class_count_defaults(None, {"max_iter": 100}, y) == ({}, [])
    assert class_count_defaults("random_forest", {}, y) == ({}, [])
    assert class_count_defaults("hist_gradient_boosting", {}, y) == ({}, [])
    assert class_count_defaults(None, {}, y)[0] == {"max_iter": BOOSTING_TREE_BUDGET // 60}
    hundreds = pd.Series([f"c{i}" for i in range(500)] * 10)
    assert class_count_defaults(None, {}, hundreds)[0] == {"max_iter": 20}  # the floor


def test_twenty_classes_keep_scikit_learns_defaults():
    y = pd.Series([f"c{i}" for i in range(20)] * 10)
    assert class_count_defaults(None, {}, y) == ({}, [])


def test_a_single_row_class_in_a_large_table_trains_instead_of_crashing(caplog):
    # Past 10,000 rows scikit-learn holds out a stratified validation share for early
    # stopping, which raises on a class with one row; the default turns it off instead.
    labels = np.where(np.arange(10_500) % 2 == 0, "even", "odd").astype(object)
    labels[7] = "once"
    frame = labelled(labels, columns=2)
    y = frame["y"]
    with pytest.raises(ValueError, match="only 1 member"):
        HistGradientBoostingClassifier(max_iter=2).fit(frame[["x0", "x1"]], y)
    with caplog.at_level(logging.WARNING, logger="kfp_mlops.model.train"):
        model, metadata = fit(frame, params={"max_iter": 5})
    assert metadata.params == {"early_stopping": False, "max_iter": 5}
    assert "once" in metadata.classes
    assert any("class 'once' (1 row) cannot be split into: early_stopping is false"
               in r.getMessage() for r in caplog.records)
    # Set by the user, early stopping is theirs (and scikit-learn's error is too).
    with pytest.raises(ValueError, match="only 1 member"):
        fit(frame, params={"max_iter": 5, "early_stopping": True})


@pytest.mark.parametrize(("name", "target"), [("penguins", "species"),
                                              ("breast_cancer", "target"), ("wine", "target")])
def test_ordinary_data_trains_the_same_model_as_before(name, target, caplog):
    frame = load_table(name)
    with caplog.at_level(logging.WARNING, logger="kfp_mlops.model.train"):
        model, metadata = fit(frame.rename(columns={target: "y"}))
    assert metadata.params == {} and not caplog.records
    # What train_model fitted before the class-count defaults existed: the plain default.
    data = frame.rename(columns={target: "y"})
    data = data[data["y"].notna()]
    plan = plan_features(data, "y")
    inputs = prepare_inputs(data, plan)
    before = build_pipeline(plan, HistGradientBoostingClassifier(random_state=42))
    with threadpool_limits(limits=1, user_api="openmp"):
        before.fit(inputs, data["y"].astype(str))
    estimator = model.named_steps["estimator"]
    assert estimator.get_params() == before.named_steps["estimator"].get_params()
    np.testing.assert_array_equal(model.predict_proba(inputs), before.predict_proba(inputs))
