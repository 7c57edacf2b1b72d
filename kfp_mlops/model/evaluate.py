"""Score a trained Pipeline on held-out rows, and the absolute quality gate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from kfp_mlops.data.sources import DataError
from kfp_mlops.model.package import ModelMetadata

# KFP's UI draws a ROC curve from at most a few hundred points comfortably.
MAX_ROC_POINTS = 200


@dataclass
class Evaluation:
    """Scalar metrics plus the curves the KFP UI can draw."""

    metrics: dict[str, float]
    labels: list[str] | None = None
    confusion_matrix: list[list[int]] | None = None
    roc: dict[str, list[float]] | None = None  # fpr, tpr, thresholds (binary only)
    extra: dict[str, object] = field(default_factory=dict)


def evaluate_model(model, metadata: ModelMetadata, frame: pd.DataFrame) -> Evaluation:
    """Evaluate ``model`` on ``frame`` (which holds the target column)."""
    from kfp_mlops.model.features import model_inputs

    if metadata.target not in frame.columns:
        raise DataError(f"evaluation data has no target column {metadata.target!r}")
    labelled = frame[frame[metadata.target].notna()]
    inputs = model_inputs(labelled, metadata)
    if metadata.task == "classification":
        return _classification(model, inputs, labelled[metadata.target].astype(str))
    return _regression(model, inputs, labelled[metadata.target].astype(float))


def _classification(model, inputs: pd.DataFrame, y: pd.Series) -> Evaluation:
    labels = [str(c) for c in model.classes_]
    # One pass through the pipeline: a scikit-learn classifier's predict is the argmax
    # of predict_proba, so deriving it halves evaluation time on large test splits.
    proba = model.predict_proba(inputs) if hasattr(model, "predict_proba") else None
    predicted = (
        np.asarray(model.classes_)[proba.argmax(axis=1)] if proba is not None
        else model.predict(inputs)
    )
    # The metrics run on integer codes, not strings: scikit-learn sorts its labels
    # several times per metric, and sorting Python strings made evaluation 5x slower
    # on 200k rows. Codes follow ``labels``; test-only labels get codes after them.
    unseen = sorted(set(y.unique()) - set(labels))
    categories = labels + unseen
    y_codes = pd.Categorical(y, categories=categories).codes.astype(np.int64)
    predicted_codes = pd.Categorical(
        pd.Series(predicted).astype(str), categories=categories
    ).codes.astype(np.int64)
    result = {
        "accuracy": skm.accuracy_score(y_codes, predicted_codes),
        "balanced_accuracy": skm.balanced_accuracy_score(y_codes, predicted_codes),
        "f1_macro": skm.f1_score(y_codes, predicted_codes, average="macro", zero_division=0),
        "precision_macro": skm.precision_score(
            y_codes, predicted_codes, average="macro", zero_division=0
        ),
        "recall_macro": skm.recall_score(
            y_codes, predicted_codes, average="macro", zero_division=0
        ),
    }
    evaluation = Evaluation(
        metrics=result,
        labels=labels,
        confusion_matrix=skm.confusion_matrix(
            y_codes, predicted_codes, labels=range(len(labels))
        ).tolist(),
    )
    if proba is not None:
        if not unseen:
            result["log_loss"] = skm.log_loss(y_codes, proba, labels=range(len(labels)))
        if len(labels) == 2:
            positive = (y_codes == 1).astype(int)
            result["roc_auc"] = skm.roc_auc_score(positive, proba[:, 1])
            fpr, tpr, thresholds = skm.roc_curve(positive, proba[:, 1])
            evaluation.roc = _thin_roc(fpr, tpr, thresholds)
        elif not unseen and len(np.unique(y_codes)) == len(labels):
            result["roc_auc_ovr"] = skm.roc_auc_score(
                y_codes, proba, multi_class="ovr", labels=range(len(labels))
            )
    evaluation.metrics = {k: round(float(v), 6) for k, v in result.items()}
    return evaluation


def _thin_roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> dict[str, list[float]]:
    # roc_curve's first threshold is +inf, which JSON (and the KFP UI) cannot hold.
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), MAX_ROC_POINTS)).astype(int))
    return {
        "fpr": [float(v) for v in fpr[keep]],
        "tpr": [float(v) for v in tpr[keep]],
        "thresholds": [float(min(v, 1.0)) for v in thresholds[keep]],
    }


def _regression(model, inputs: pd.DataFrame, y: pd.Series) -> Evaluation:
    predicted = model.predict(inputs)
    result = {
        "r2": skm.r2_score(y, predicted),
        "rmse": math.sqrt(skm.mean_squared_error(y, predicted)),
        "mae": skm.mean_absolute_error(y, predicted),
    }
    return Evaluation(metrics={k: round(float(v), 6) for k, v in result.items()})
