"""Performance estimated without labels (kfp_mlops/model/estimate.py): CBPE and DLE.

Models are trained with the suite's own trainer on generated data; the estimator is
fitted on held-out rows, then batches drawn with and without a covariate shift are
estimated without their labels, and the estimate is compared with the metric the
held-back labels give.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from kfp_mlops.model.estimate import (
    CBPE,
    DLE,
    NONE,
    Estimate,
    calibrated,
    drop,
    estimate_performance,
    expected_metrics,
    fit_estimator,
)
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model

COLUMNS = [f"x{i}" for i in range(5)]


def world(rng: np.random.Generator, n: int, shift: float = 0.0, task: str = "classification"
          ) -> pd.DataFrame:
    """Inputs whose x0 narrows and x1 moves with ``shift``; the label's link is fixed."""
    x = rng.normal(size=(n, 5))
    x[:, 0] *= 1.0 - 0.7 * shift
    x[:, 1] += 0.8 * shift
    frame = pd.DataFrame(x, columns=COLUMNS)
    frame["colour"] = rng.choice(["red", "green", "blue"], n)
    if task == "classification":
        logit = 2.0 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] - 0.3
        frame["label"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    else:
        noise = rng.normal(size=n) * (0.3 + 0.6 * np.abs(x[:, 1]))
        frame["label"] = 3 * x[:, 0] + x[:, 2] * x[:, 3] + noise
    return frame


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(0)
    model, metadata = train_model(world(rng, 6000), TrainingSettings(
        target="label", task="classification", estimator="hist_gradient_boosting"))
    held_out = world(rng, 3000)
    metadata.performance_estimator = fit_estimator(model, metadata, held_out)
    return model, metadata, rng


@pytest.fixture(scope="module")
def regressor():
    rng = np.random.default_rng(1)
    model, metadata = train_model(world(rng, 6000, task="regression"), TrainingSettings(
        target="label", task="regression", estimator="hist_gradient_boosting"))
    metadata.performance_estimator = fit_estimator(
        model, metadata, world(rng, 3000, task="regression"))
    return model, metadata, rng


def realized_accuracy(model, metadata, frame) -> float:
    from kfp_mlops.model.evaluate import evaluate_model

    return evaluate_model(model, metadata, frame).metrics["accuracy"]


def test_the_estimator_is_json_and_names_its_method(classifier, regressor):
    for _, metadata, _ in (classifier, regressor):
        stored = metadata.performance_estimator
        assert json.loads(json.dumps(stored)) == stored
    assert classifier[1].performance_estimator["method"] == CBPE
    assert regressor[1].performance_estimator["method"] == DLE


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_cbpe_lands_near_the_accuracy_the_labels_give(classifier, shift):
    model, metadata, _ = classifier
    rng = np.random.default_rng(100 + int(shift * 10))
    batch = world(rng, 4000, shift)
    truth = realized_accuracy(model, metadata, batch)
    found = estimate_performance(model, metadata, batch.drop(columns="label"))
    assert found.method == CBPE and found.rows == 4000
    assert abs(found.metrics["accuracy"] - truth) <= max(found.band["accuracy"], 0.02), (
        found, truth)
    assert set(found.metrics) == {"accuracy", "balanced_accuracy", "f1_macro",
                                  "precision_macro", "recall_macro", "roc_auc"}


def test_the_shift_lowers_both_the_estimate_and_the_realized_accuracy(classifier):
    model, metadata, _ = classifier
    rng = np.random.default_rng(7)
    calm, shifted = world(rng, 3000), world(rng, 3000, 1.0)
    estimates = [estimate_performance(model, metadata, b).metrics["accuracy"]
                 for b in (calm, shifted)]
    truths = [realized_accuracy(model, metadata, b) for b in (calm, shifted)]
    assert truths[0] - truths[1] > 0.03  # the shift hurts
    assert estimates[0] - estimates[1] > 0.03  # and the estimate sees it without labels
    assert abs((estimates[0] - estimates[1]) - (truths[0] - truths[1])) < 0.025, (
        estimates, truths)


def test_the_band_covers_the_realized_accuracy_and_shrinks_with_rows(classifier):
    model, metadata, _ = classifier
    covered, bands = 0, {}
    for seed in range(20):
        batch = world(np.random.default_rng(1000 + seed), 300, 0.5)
        found = estimate_performance(model, metadata, batch)
        covered += abs(found.metrics["accuracy"] - realized_accuracy(model, metadata, batch)) \
            <= found.band["accuracy"]
        bands[300] = found.band["accuracy"]
    assert covered >= 16  # a 95% band: about 19 of 20
    big = estimate_performance(model, metadata, world(np.random.default_rng(5), 4800, 0.5))
    assert big.band["accuracy"] < bands[300] / 2.5  # 1/sqrt(rows): 4x fewer -> 1/4


def test_expected_metrics_of_certain_probabilities_are_sklearns():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 500)
    predicted = np.where(rng.random(500) < 0.7, truth, rng.integers(0, 3, 500))
    onehot = np.eye(3)[truth]
    found = expected_metrics(onehot, predicted, None)
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert found["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(truth, predicted))
    assert found["f1_macro"] == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    binary = truth % 2
    score = np.round(rng.random(500), 1)  # ties count a half, as roc_auc_score counts them
    found = expected_metrics(np.eye(2)[binary], (score > 0.5).astype(int), score)
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(binary, score))


def test_calibrated_rows_sum_to_one():
    proba = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    knots = {"x": [0.0, 1.0], "y": [0.0, 0.5]}
    assert np.allclose(calibrated(proba, [knots, None, None]).sum(axis=1), 1.0)
    binary = calibrated(np.array([[0.3, 0.7]]), [None, knots])
    assert binary.tolist() == [[0.65, 0.35]]


def test_dle_estimates_mae_and_rmse_where_the_noise_grows(regressor):
    model, metadata, _ = regressor
    rng = np.random.default_rng(11)
    for shift in (0.0, 1.0):
        batch = world(rng, 4000, shift, task="regression")
        found = estimate_performance(model, metadata, batch.drop(columns="label"))
        from kfp_mlops.model.evaluate import evaluate_model

        truth = evaluate_model(model, metadata, batch).metrics
        assert found.method == DLE
        for metric in ("mae", "rmse"):
            assert abs(found.metrics[metric] - truth[metric]) <= 0.08 * truth[metric], (
                metric, shift, found, truth)


def test_a_classifier_without_predict_proba_says_so(classifier):
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    model, metadata, rng = classifier
    frame = world(np.random.default_rng(9), 800)
    from kfp_mlops.model.features import model_inputs

    svc = Pipeline([("preprocess", model.steps[0][1]),
                    ("estimator", LinearSVC())]).fit(model_inputs(frame, metadata),
                                                     frame["label"])
    stored = fit_estimator(svc, metadata, frame)
    assert stored["method"] == NONE and "predict_proba" in stored["reason"]
    found = estimate_performance(svc, metadata, frame, stored)
    assert found.method == NONE and not found.metrics
    assert "no predict_proba" in found.describe("accuracy")


def test_a_version_without_a_stored_estimator_is_estimated_from_raw_probabilities(classifier):
    model, metadata, _ = classifier
    from dataclasses import replace

    old = replace(metadata, performance_estimator=None)
    found = estimate_performance(model, old, world(np.random.default_rng(4), 500))
    assert found.method == CBPE and "raw probabilities" in found.note


def test_drop_reads_scores_down_and_errors_up():
    assert drop("accuracy", 0.9, 0.8) == pytest.approx(0.1)
    assert drop("mae", 2.0, 2.2) == pytest.approx(0.1)
    assert drop("accuracy", 0.9, 0.95) < 0
    line = Estimate(CBPE, 10, {"accuracy": 0.912}, {"accuracy": 0.0213}).describe("accuracy")
    assert line == "estimated accuracy 0.912 +/- 0.021"


def test_the_stored_loss_model_predicts_as_scikit_learn_does():
    from sklearn.ensemble import HistGradientBoostingRegressor

    from kfp_mlops.model.estimate import (
        DLE_LEAVES,
        DLE_RATE,
        DLE_TREES,
        _ensemble,
        _hist_tree_arrays,
    )

    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 3))
    y = np.abs(x[:, 0]) + rng.normal(size=500) * 0.1
    fitted = HistGradientBoostingRegressor(max_iter=DLE_TREES, max_leaf_nodes=DLE_LEAVES,
                                           learning_rate=DLE_RATE, early_stopping=False,
                                           random_state=0).fit(x, y)
    stored = {"init": float(np.ravel(fitted._baseline_prediction)[0]), "rate": 1.0,
              "trees": [_hist_tree_arrays(t[0].nodes) for t in fitted._predictors]}
    assert np.allclose(_ensemble(x, stored), fitted.predict(x), atol=1e-3)
    assert len(json.dumps(stored)) < 80_000
