import numpy as np
import pandas as pd
import pytest

from kfp_mlops.data.sources import DataError, load_table
from kfp_mlops.model.blessing import bless
from kfp_mlops.model.evaluate import evaluate_model
from kfp_mlops.model.features import plan_features
from kfp_mlops.model.package import ModelIntegrityError, load_model_folder, write_model_folder
from kfp_mlops.model.settings import BlessingSettings, TrainingSettings
from kfp_mlops.model.train import train_model


def messy_frame(rows=300, seed=0):
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], rows)
    size = rng.normal(10, 3, rows)
    frame = pd.DataFrame({
        "id": [f"row-{i}" for i in range(rows)],
        "size": size,
        "color": color,
        "empty": [None] * rows,
        "constant": 7,
        "when": pd.date_range("2024-01-01", periods=rows, freq="D").astype(str),
        "label": np.where(size > 10, "big", "small"),
    })
    frame.loc[rng.choice(rows, 30, replace=False), "size"] = np.nan
    frame.loc[rng.choice(rows, 30, replace=False), "color"] = None
    return frame


def test_feature_plan_drops_unusable_columns_with_reasons():
    plan = plan_features(messy_frame(), "label")
    assert plan.numeric == ["size"]
    assert plan.categorical == ["color"]
    assert set(plan.dropped) == {"id", "empty", "constant"}
    assert "identifier-like" in plan.dropped["id"]
    assert plan.datetime == ["when"]  # calendar features (kfp_mlops.model.calendar)


def test_pipeline_handles_missing_values_and_unseen_categories():
    frame = messy_frame()
    model, metadata = train_model(frame, TrainingSettings(target="label", task="classification"))
    unseen = frame.head(5).assign(color="purple")
    assert len(model.predict(unseen[metadata.feature_names])) == 5
    evaluation = evaluate_model(model, metadata, frame)
    assert evaluation.metrics["accuracy"] > 0.8
    assert evaluation.confusion_matrix is not None
    assert evaluation.roc is not None and len(evaluation.roc["fpr"]) <= 200
    assert all(np.isfinite(evaluation.roc["thresholds"]))


def test_regression_metrics_and_gate():
    frame = load_table("diabetes")
    model, metadata = train_model(frame, TrainingSettings(
        target="target", task="regression", estimator="ridge"))
    evaluation = evaluate_model(model, metadata, frame)
    assert set(evaluation.metrics) == {"r2", "rmse", "mae"}
    loose = BlessingSettings(metric="rmse", threshold=1000).policy_for("regression")
    assert bless(evaluation.metrics, None, loose).blessed
    strict = BlessingSettings(metric="r2", threshold=0.99).policy_for("regression")
    failed = bless(evaluation.metrics, None, strict)
    assert not failed.blessed and "r2" in failed.reason and "0.99" in failed.reason


def test_policy_from_quality_flags():
    def spec(task, metric="auto", threshold="auto", policy="auto"):
        return BlessingSettings.from_parameters(metric, threshold, policy).spec(task)

    assert spec("classification") == "accuracy>=0.7~0.01"
    assert spec("regression", "rmse", "40") == "rmse<=40~0.01"
    assert spec("regression", policy="r2>=0.5") == "r2>=0.5"
    with pytest.raises(DataError, match="give a quality threshold"):
        spec("classification", "f1_macro")
    with pytest.raises(DataError, match="quality threshold 'high' is not a number"):
        spec("classification", threshold="high")


def test_unknown_estimator_and_bad_params():
    frame = load_table("iris")
    with pytest.raises(DataError, match="choose one of"):
        train_model(frame, TrainingSettings(
            target="target", task="classification", estimator="catboost_maybe"))
    with pytest.raises(DataError, match="not a JSON object"):
        train_model(frame, TrainingSettings.from_parameters(
            target="target", task="classification", params="{max_depth"))


def test_model_folder_round_trip_and_tamper_check(tmp_path):
    frame = load_table("wine")
    model, metadata = train_model(frame, TrainingSettings(target="target", task="classification"))
    write_model_folder(model, metadata, tmp_path / "m")
    loaded, meta = load_model_folder(tmp_path / "m")
    assert meta.model_sha256 and meta.sklearn_version
    assert (loaded.predict(frame[meta.feature_names]) == model.predict(frame[meta.feature_names])).all()
    with open(tmp_path / "m" / "model.joblib", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model_folder(tmp_path / "m")


@pytest.mark.parametrize(("name", "target"), [("penguins", "species"),
                                              ("breast_cancer", "target")])
def test_metrics_equal_scikit_learns_on_the_class_names(name, target):
    from sklearn import metrics as skm

    frame = load_table(name)
    model, metadata = train_model(frame.iloc[::2], TrainingSettings(
        target=target, task="classification", estimator="logistic_regression"))
    test = frame.iloc[1::2]
    got = evaluate_model(model, metadata, test)
    y = test[target].astype(str)
    predicted = model.predict(test[metadata.feature_names])
    proba = model.predict_proba(test[metadata.feature_names])
    labels = list(model.classes_)
    expected = {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "f1_macro": skm.f1_score(y, predicted, average="macro"),
        "precision_macro": skm.precision_score(y, predicted, average="macro"),
        "recall_macro": skm.recall_score(y, predicted, average="macro"),
        "log_loss": skm.log_loss(y, proba, labels=labels),
    }
    for metric, value in expected.items():
        assert got.metrics[metric] == pytest.approx(value, abs=1e-6), metric
    assert got.confusion_matrix == skm.confusion_matrix(y, predicted, labels=labels).tolist()


def test_a_class_only_the_test_rows_hold_is_scored_not_a_crash():
    frame = messy_frame()
    model, metadata = train_model(frame, TrainingSettings(target="label", task="classification"))
    test = frame.head(40).copy()
    test.loc[:9, "label"] = "huge"  # never seen in training
    evaluation = evaluate_model(model, metadata, test)
    assert evaluation.metrics["accuracy"] <= 0.75  # those 10 rows are always wrong
    assert "log_loss" not in evaluation.metrics  # undefined for a class the model lacks
    assert sum(map(sum, evaluation.confusion_matrix)) == 30  # rows of the model's classes


def test_metric_order_is_the_order_evaluate_reports():
    from kfp_mlops.model.package import in_reading_order

    frame = messy_frame()
    model, metadata = train_model(frame, TrainingSettings(target="label", task="classification"))
    metrics = evaluate_model(model, metadata, frame).metrics
    shuffled = dict(sorted(metrics.items()))  # how a KFP Metrics artifact arrives
    assert list(in_reading_order(shuffled)) == list(metrics)
    assert list(in_reading_order({"zeta": 1.0, "mae": 2.0, "r2": 3.0})) == ["r2", "mae", "zeta"]


def test_training_refuses_infinite_values_naming_the_columns():
    # Before: "Input X contains infinity" from scikit-learn, no column named (the data
    # gate reports them too; this holds when it ran with warn_only).
    frame = messy_frame()
    frame.loc[[1, 2], "size"] = [np.inf, -np.inf]
    frame["ratio"] = np.where(np.arange(len(frame)) == 9, np.inf, 1.5 + np.arange(len(frame)))
    with pytest.raises(DataError, match=r"training rows hold infinite values .* column\(s\) "
                                        r"'size' \(2\), 'ratio' \(1\).*division by zero"):
        train_model(frame, TrainingSettings(target="label", task="classification"))
    target = load_table("diabetes")
    target.loc[0, "target"] = np.inf
    with pytest.raises(DataError, match="target 'target' holds 1 infinite values"):
        train_model(target, TrainingSettings(target="target", task="regression", estimator="ridge"))


def test_evaluation_refuses_infinite_values_naming_the_columns():
    frame = messy_frame()
    model, metadata = train_model(frame, TrainingSettings(target="label", task="classification"))
    frame.loc[4, "size"] = np.inf
    with pytest.raises(DataError, match=r"evaluation rows hold infinite values .*'size' \(1\)"):
        evaluate_model(model, metadata, frame)


def test_wide_tables_prepare_without_fragmenting():
    import warnings

    from kfp_mlops.model.features import FeaturePlan, prepare_inputs

    wide = pd.DataFrame(np.zeros((10, 300)), columns=[f"x{i}" for i in range(300)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        prepared = prepare_inputs(wide, FeaturePlan(numeric=list(wide.columns)))
    assert prepared.shape == (10, 300)
