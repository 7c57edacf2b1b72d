"""The monitoring steps: pure functions of tables and statistics, and their wiring.

The pure functions (drift against the reference, performance on labelled rows, the
decision, the report) are tested on generated batches; the artifacts the steps hand
each other round-trip to the same report; the compiled pipelines are read as the KFP
backend reads them (tasks, their inputs, the ``dsl.If`` on the monitor's decision).
"""

import json

import pytest
import yaml

from kfp_mlops.app.local.runner import TaskResult
from kfp_mlops.data.gate import validate_against_store
from kfp_mlops.data.generator import make_batch
from kfp_mlops.data.schema import infer_schema, load_schema, save_schema
from kfp_mlops.data.stats import DatasetStatistics, compute_statistics_from_frame
from kfp_mlops.data.validation import ValidationResult, ValidationThresholds, validate
from kfp_mlops.errors import DataError
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.monitoring.decision import (
    ReferenceDrift,
    decide,
    drift_against_reference,
    labelled_rows,
    no_production,
    performance,
)
from kfp_mlops.monitoring.report import report_html, summary_markdown
from kfp_mlops.pipelines.compile import compile_pipelines
from kfp_mlops.pipelines.monitoring import MONITORING_TASKS, training_view
from kfp_mlops.storage import open_store


@pytest.fixture(scope="module")
def trained():
    return train_model(make_batch("reference", 800, 1),
                       TrainingSettings(target="default", task="classification"))


@pytest.fixture(scope="module")
def reference():
    return make_batch("reference", 1200, 2)


def _reference_drift(reference, current, metadata, share=0.5):
    drift = drift_against_reference(reference, current, metadata, share)
    return ReferenceDrift("loans", "loans@1", "ds-1", metadata.target, drift)


def test_a_drifted_batch_drifts_and_the_target_counts(trained, reference):
    _, metadata = trained
    calm = drift_against_reference(reference, make_batch("reference", 1200, 3), metadata, 0.5)
    moved = drift_against_reference(reference, make_batch("drifted", 1200, 3), metadata, 0.5)
    assert not calm.dataset_drift and moved.dataset_drift
    assert moved.target_counted and moved.target == "default"
    assert {f.column for f in moved.features} == {*metadata.feature_names, "default"}


def test_a_batch_without_a_feature_is_refused_naming_it(trained, reference):
    with pytest.raises(DataError, match="income"):
        drift_against_reference(reference, make_batch("reference", 50, 4).drop(columns=["income"]),
                                trained[1], 0.5)


def test_performance_on_the_labelled_rows_only(trained):
    model, metadata = trained
    batch = make_batch("reference", 400, 5)
    batch.loc[::2, "default"] = None
    labelled = labelled_rows(batch, metadata.target)
    assert len(labelled) == 200
    assert 0 < performance(model, metadata, labelled)["accuracy"] <= 1
    assert performance(model, metadata, labelled.iloc[:0]) == {}
    assert labelled_rows(batch.drop(columns=["default"]), metadata.target) is None


def test_the_decision_and_its_reason(trained, reference):
    _, metadata = trained
    current = make_batch("drifted", 1200, 6)
    found = _reference_drift(reference, current, metadata)
    bad = ValidationResult(False, reason="1 error: income below the range")
    result = decide(found, bad, labelled=10, metrics={"accuracy": 0.5}, force=True)
    assert result.retrain and result.dataset_drift and result.model_ref == "loans@1"
    assert result.reason == f"{found.drift.reason}; data quality: {bad.reason}; retraining forced"
    assert not result.quality_passed and result.metrics()["current_accuracy"] == 0.5
    calm = _reference_drift(reference, make_batch("reference", 1200, 7), metadata)
    kept = decide(calm, None)
    assert not kept.retrain and kept.reason == calm.drift.reason and kept.quality_passed
    first = decide(ReferenceDrift("loans"), None, force=True)
    assert first == no_production("loans") and first.retrain
    assert "no production version of 'loans'" in first.reason


def test_the_report_is_the_same_after_the_artifacts_round_trip(trained, reference):
    """What detect-drift and validate-data write, monitor reads back to the same report."""
    model, metadata = trained
    current = make_batch("drifted", 900, 8)
    stats = compute_statistics_from_frame(current)
    quality = validate(stats, infer_schema(compute_statistics_from_frame(reference)),
                       ValidationThresholds())
    found = _reference_drift(reference, current, metadata)
    result = decide(found, quality, labelled=900,
                    metrics=performance(model, metadata, labelled_rows(current, "default")))
    again = ReferenceDrift.from_json(found.to_json())
    quality_again = ValidationResult.from_dict(json.loads(json.dumps(quality.to_dict())))
    stats_again = DatasetStatistics.from_json(stats.to_json())
    assert again.drift.to_dict() == found.drift.to_dict()
    assert report_html(stats_again, again, quality_again) == report_html(stats, found, quality)
    assert summary_markdown(stats_again, again, quality_again, result, 900) == \
        summary_markdown(stats, found, quality, result, 900)
    assert "Performance on labelled rows** (900 of 900)" in summary_markdown(
        stats, found, quality, result, 900)
    assert decide(again, quality_again) == decide(found, quality)


def test_check_only_validation_stores_nothing(tmp_path, reference):
    store_uri = str(tmp_path / "store")
    stats = compute_statistics_from_frame(reference)
    nothing = validate_against_store(stats, store_uri, "loans", check_only=True)
    assert nothing.passed and nothing.validation is None and "nothing checked" in nothing.reason
    assert not open_store(store_uri).list()
    narrow = infer_schema(compute_statistics_from_frame(reference.iloc[:50]))
    save_schema(open_store(store_uri), narrow, "loans")
    before = sorted(open_store(store_uri).list())
    checked = validate_against_store(stats, store_uri, "loans", check_only=True)
    assert checked.validation is not None and not checked.schema_created
    assert checked.validation == validate(stats, load_schema(open_store(store_uri), "loans"),
                                          ValidationThresholds())
    assert sorted(open_store(store_uri).list()) == before  # nothing widened or saved


def test_summaries_read_the_training_steps_under_their_own_names():
    tasks = {name: TaskResult(name) for name in
             [*MONITORING_TASKS, "ingest-2", "check-data", "validate-data-2", "skip-step"]}
    assert list(training_view(tasks)) == ["monitor", "ingest", "check-data", "validate-data",
                                          "skip-step"]
    training = {name: TaskResult(name) for name in ["ingest", "validate-data", "train"]}
    assert training_view(training) is training


# ---------------------------------------------------------------- compiled pipelines


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    compile_pipelines(out, names=["monitoring", "continuous-training"])
    return {name: next(yaml.safe_load_all((out / f"{name}.yaml").read_text()))
            for name in ["monitoring", "continuous-training"]}


def _producer(task, artifact):
    return task["inputs"]["artifacts"][artifact]["taskOutputArtifact"]["producerTask"]


@pytest.mark.parametrize("name", ["monitoring", "continuous-training"])
def test_the_pipeline_monitors_with_the_shared_data_steps(compiled, name):
    spec = compiled[name]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(MONITORING_TASKS) <= set(tasks)
    component = {t: tasks[t]["componentRef"]["name"] for t in MONITORING_TASKS}
    assert component["compute-statistics"] == "comp-compute-statistics"
    assert component["validate-data"] == "comp-validate-data"
    assert _producer(tasks["compute-statistics"], "dataset") == "ingest"
    assert _producer(tasks["validate-data"], "statistics") == "compute-statistics"
    assert _producer(tasks["detect-drift"], "dataset") == "ingest"
    assert {a: _producer(tasks["monitor"], a) for a in tasks["monitor"]["inputs"]["artifacts"]} \
        == {"dataset": "ingest", "statistics": "compute-statistics",
            "validation": "validate-data", "drift": "detect-drift"}
    check_only = tasks["validate-data"]["inputs"]["parameters"]["check_only"]
    assert check_only["runtimeValue"]["constant"] is True
    # A monitored batch is not published as a dataset version.
    assert "store" not in tasks["ingest"]["inputs"].get("parameters", {})


def test_continuous_retrains_only_on_the_monitor_decision(compiled):
    spec = compiled["continuous-training"]
    branches = spec["root"]["dag"]["tasks"]["condition-branches-1"]
    assert branches["dependentTasks"] == ["monitor"]
    retrain = spec["components"]["comp-condition-branches-1"]["dag"]["tasks"]
    condition = next(t for t in retrain.values()
                     if "pipelinechannel--monitor-retrain" in
                     t.get("triggerPolicy", {}).get("condition", ""))
    trained = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    # The training steps are the training pipeline's, under KFP's unique names.
    assert {"ingest-2", "check-data", "compute-statistics-2", "validate-data-2"} <= set(trained)
    gate = trained["validate-data-2"]["inputs"]["parameters"]
    assert "check_only" not in gate
