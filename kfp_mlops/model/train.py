"""Train one scikit-learn Pipeline: preprocessing and estimator together.

Keeping imputation, scaling and encoding inside the pickled Pipeline means serving
cannot skew from training, and the stock KServe sklearn server can load the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfp_mlops.data.sources import DataError
from kfp_mlops.model.features import FeaturePlan, plan_features, prepare_inputs, refuse_infinite
from kfp_mlops.model.package import Feature, ModelMetadata

ESTIMATORS: dict[str, dict[str, type]] = {
    "classification": {
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "random_forest": RandomForestClassifier,
        "logistic_regression": LogisticRegression,
    },
    "regression": {
        "hist_gradient_boosting": HistGradientBoostingRegressor,
        "random_forest": RandomForestRegressor,
        "ridge": Ridge,
    },
}
DEFAULT_ESTIMATOR = "hist_gradient_boosting"
# Bounded one-hot width: rare categories share one "infrequent" column.
MAX_CATEGORIES = 50


def make_estimator(task: str, estimator: str, params: dict[str, Any], seed: int):
    """Instantiate ``estimator`` for ``task`` with ``params``; clear errors for typos."""
    choices = ESTIMATORS[task]
    name = DEFAULT_ESTIMATOR if estimator == "auto" else estimator
    if name not in choices:
        raise DataError(
            f"estimator {estimator!r} is not available for {task}; choose one of "
            f"{', '.join(['auto', *choices])}"
        )
    cls = choices[name]
    defaults: dict[str, Any] = {}
    if "random_state" in cls().get_params():
        defaults["random_state"] = seed
    if cls is LogisticRegression:
        defaults["max_iter"] = 1000
    try:
        return cls(**{**defaults, **params})
    except TypeError as exc:
        raise DataError(f"bad parameter for {name}: {exc}") from None


def build_pipeline(plan: FeaturePlan, estimator) -> Pipeline:
    """The full model: per-type preprocessing then ``estimator``."""
    numeric = Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
    ])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES,
            sparse_output=False,
        )),
    ])
    preprocess = ColumnTransformer(
        [("numeric", numeric, plan.numeric), ("categorical", categorical, plan.categorical)],
        remainder="drop",
    )
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def parse_params(params: str | dict[str, Any] | None) -> dict[str, Any]:
    """Estimator parameters from a JSON object string (CLI and pipeline parameter form)."""
    if params is None or params == "":
        return {}
    if isinstance(params, dict):
        return params
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as exc:
        raise DataError(f"estimator params {params!r} are not a JSON object: {exc.msg}") from None
    if not isinstance(parsed, dict):
        raise DataError(
            f"estimator params {params!r} must be a JSON object like {{\"max_depth\": 3}}"
        )
    return parsed


@dataclass
class TrainingSetup:
    """An unfitted model and the prepared rows it learns from (training and tuning)."""

    model: Pipeline
    inputs: pd.DataFrame
    y: pd.Series
    plan: FeaturePlan
    params: dict[str, Any]


def prepare_training(
    frame: pd.DataFrame,
    target: str,
    task: str,
    estimator: str = "auto",
    params: str | dict[str, Any] | None = None,
    seed: int = 42,
) -> TrainingSetup:
    """Choose features, prepare the rows with a target, and build the unfitted model."""
    labelled = frame[frame[target].notna()]
    plan = plan_features(labelled, target)
    inputs = prepare_inputs(labelled, plan)
    refuse_infinite(inputs, plan.numeric, "training")
    y = labelled[target].astype(str) if task == "classification" else labelled[target].astype(float)
    if task == "regression" and np.isinf(y.to_numpy()).any():
        raise DataError(
            f"target {target!r} holds {int(np.isinf(y.to_numpy()).sum())} infinite values "
            "(inf or -inf); a regressor cannot learn from them. Replace or drop those rows "
            "in the source"
        )
    parsed = parse_params(params)
    model = build_pipeline(plan, make_estimator(task, estimator, parsed, seed))
    return TrainingSetup(model, inputs, y, plan, parsed)


def train_model(
    frame: pd.DataFrame,
    target: str,
    task: str,
    estimator: str = "auto",
    params: str | dict[str, Any] | None = None,
    seed: int = 42,
) -> tuple[Pipeline, ModelMetadata]:
    """Fit a Pipeline on ``frame``; return it with metadata describing its inputs."""
    setup = prepare_training(frame, target, task, estimator, params, seed)
    model, inputs, plan, parsed = setup.model, setup.inputs, setup.plan, setup.params
    model.fit(inputs, setup.y)
    features = [
        Feature(
            name=c, dtype=str(inputs[c].dtype),
            kind="numeric" if c in plan.numeric else "categorical",
        )
        for c in plan.columns
    ]
    metadata = ModelMetadata(
        task=task,
        target=target,
        features=features,
        estimator=type(model.named_steps["estimator"]).__name__,
        params=parsed,
        classes=[str(c) for c in model.classes_] if task == "classification" else None,
        dropped_columns=plan.dropped,
    )
    return model, metadata
