"""Decisions on estimated quality, labels pending, the log's own columns, the report order.

Pure functions of tables and statistics (kfp_mlops/monitoring/, data/validation.py): a
model trained on generated loans, the estimate from its stored calibration.
"""

from __future__ import annotations

import pytest

from kfp_mlops.data.generator import make_batch
from kfp_mlops.data.log_columns import LOG_COLUMNS
from kfp_mlops.data.schema import infer_schema
from kfp_mlops.data.stats import compute_statistics_from_frame
from kfp_mlops.data.validation import LABELS_PENDING, labels_pending, validate
from kfp_mlops.model.estimate import estimate_performance, fit_estimator
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.monitoring.decision import (
    ModelQuality,
    ReferenceDrift,
    decide,
    drift_against_reference,
)
from kfp_mlops.monitoring.report import report_html, summary_markdown


@pytest.fixture(scope="module")
def trained():
    model, metadata = train_model(make_batch("reference", 1500, 1),
                                  TrainingSettings(target="default", task="classification"))
    metadata.performance_estimator = fit_estimator(model, metadata,
                                                   make_batch("reference", 600, 9))
    metadata.version = 3
    metadata.metrics = {"accuracy": 0.9}
    return model, metadata


def _quality(model, metadata, batch, realized=None):
    return ModelQuality(labelled=0 if realized is None else len(batch),
                        realized=realized or {},
                        estimate=estimate_performance(model, metadata, batch),
                        reference=dict(metadata.metrics), version=3, task="classification",
                        rows=len(batch))


def _drift(metadata, batch):
    reference = make_batch("reference", 1200, 2)
    return ReferenceDrift("loans", "loans@3", "ds-1", "default",
                          drift_against_reference(reference, batch, metadata, 0.5))


def test_kept_says_so_with_the_estimate(trained):
    model, metadata = trained
    batch = make_batch("reference", 800, 3).drop(columns="default")
    result = decide(_drift(metadata, batch), None, model=_quality(model, metadata, batch))
    assert not result.retrain and result.quality_source == "estimated"
    assert result.headline.startswith("kept production version 3: no drift, estimated "
                                      "accuracy 0.")
    assert "+/- 0.0" in result.headline
    assert "labels pending" in result.quality_line()
    metrics = result.metrics()
    assert 0 < metrics["estimated_accuracy"] <= 1 and 0 < metrics["estimated_accuracy_band"]


def test_an_estimated_drop_past_the_threshold_retrains(trained):
    model, metadata = trained
    batch = make_batch("reference", 800, 4).drop(columns="default")
    quality = _quality(model, metadata, batch)
    quality.reference = {"accuracy": quality.estimate.metrics["accuracy"] + 0.1}
    found = _drift(metadata, batch)
    assert not decide(found, None, model=quality).retrain  # the estimate informs only
    result = decide(found, None, model=quality, estimated_drop=0.05)
    assert result.retrain and result.quality_dropped and not result.dataset_drift
    assert result.quality_drop == pytest.approx(0.1)
    assert result.headline.startswith("retrain (replacing production version 3): no drift, "
                                      "estimated accuracy")
    assert "at or above the threshold 0.05" in result.reason
    assert not decide(found, None, model=quality, estimated_drop=0.2).retrain


def test_the_realized_metric_replaces_the_estimate_once_labels_cover_the_batch(trained):
    model, metadata = trained
    batch = make_batch("reference", 800, 5)
    quality = _quality(model, metadata, batch.drop(columns="default"), {"accuracy": 0.7})
    quality.labelled = 800
    result = decide(_drift(metadata, batch), None, model=quality, estimated_drop=0.05)
    assert result.quality_source == "realized" and result.retrain
    assert result.quality_drop == pytest.approx(0.2)
    assert "realized accuracy 0.7 on 800 labelled rows" in result.headline
    line = result.quality_line()
    assert "estimated accuracy" in line and "realized accuracy 0.7" in line
    quality.labelled = 20  # too few labels: the estimate decides
    assert decide(_drift(metadata, batch), None, model=quality).quality_source == "estimated"


def test_a_batch_without_the_target_is_labels_pending_not_a_failure(trained):
    _, metadata = trained
    reference = make_batch("reference", 1000, 6)
    schema = infer_schema(compute_statistics_from_frame(reference))
    batch = make_batch("reference", 300, 7).drop(columns="default")
    checked = validate(compute_statistics_from_frame(batch), schema)
    assert not checked.passed  # the schema alone expects the target
    pending = labels_pending(checked, "default")
    assert pending.passed and "labels pending" in pending.reason
    (anomaly,) = [a for a in pending.anomalies if a.column == "default"]
    assert anomaly.kind == LABELS_PENDING and anomaly.severity == "warning"


def test_the_logs_own_columns_are_known_never_unknown(trained):
    reference = make_batch("reference", 1000, 6)
    schema = infer_schema(compute_statistics_from_frame(reference))
    window = make_batch("reference", 200, 8)
    for name in LOG_COLUMNS:
        window[name] = "x" if name != "_row" else 0
    checked = validate(compute_statistics_from_frame(window), schema)
    assert not [a for a in checked.anomalies if a.column in LOG_COLUMNS], checked.anomalies


def test_the_report_opens_with_the_decision_then_quality_then_drifted_charts(trained):
    model, metadata = trained
    batch = make_batch("drifted", 800, 9).drop(columns="default")
    found = _drift(metadata, batch)
    result = decide(found, None, model=_quality(model, metadata, batch))
    stats = compute_statistics_from_frame(batch)
    html = report_html(stats, found, None, result)
    marks = ["<h2>Decision</h2>", "<h2>Model quality</h2>", "<h2>Drifted columns</h2>",
             "<h2>Drift:", "<h2>Statistics", "<h2>Distributions</h2>"]
    positions = [html.index(m) for m in marks]
    assert positions == sorted(positions)
    assert result.headline in html and "labels pending" in html
    assert html.index("&plusmn;") < html.index("<h2>Drifted columns</h2>")
    text = summary_markdown(stats, found, None, result, len(batch))
    assert text.startswith(f"**{result.headline}**")
    assert "**Estimated performance** (all 800 rows" in text
