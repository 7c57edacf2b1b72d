"""Train one scikit-learn Pipeline: preprocessing and estimator together.

Keeping imputation, scaling and encoding inside the pickled Pipeline means serving
cannot skew from training, and the stock KServe sklearn server can load the model.
"""

from __future__ import annotations

import logging
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

from kfp_mlops.data.checks import MIN_ROWS_PER_CLASS
from kfp_mlops.data.sources import DataError
from kfp_mlops.model.calendar import CalendarFeatures
from kfp_mlops.model.encoded import LabelEncoded
from kfp_mlops.model.estimators import is_external, load_class, package_of
from kfp_mlops.model.features import (
    FeaturePlan,
    class_labels,
    plan_features,
    prepare_inputs,
    refuse_infinite,
)
from kfp_mlops.model.package import Feature, ModelMetadata
from kfp_mlops.model.settings import DEFAULT_ESTIMATOR, TrainingSettings, check_estimator

# The classes of kfp_mlops.model.settings.ESTIMATOR_NAMES (a test keeps the two equal).
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
# Bounded one-hot width: rare categories share one "infrequent" column.
MAX_CATEGORIES = 50
# Gradient boosting fits one tree per class per iteration, so its cost grows with the
# number of classes: 500 classes took 505 s where 3 take seconds. Past MANY_CLASSES the
# auto estimator keeps to the trees the default spends on MANY_CLASSES classes (100
# iterations each), but never fewer than MIN_BOOSTING_ITERATIONS iterations.
MANY_CLASSES = 20
BOOSTING_TREE_BUDGET = 100 * MANY_CLASSES
MIN_BOOSTING_ITERATIONS = 20
# scikit-learn turns gradient boosting's early stopping on past this many rows, holding
# out a stratified validation fraction (which fails when a class has a single row).
AUTO_EARLY_STOPPING_ROWS = 10_000
# A class with fewer training rows than this is named in a warning (see rare_classes).
RARE_CLASS_ROWS = MIN_ROWS_PER_CLASS

log = logging.getLogger(__name__)


def make_estimator(task: str, estimator: str | None, params: dict[str, Any], seed: int):
    """Instantiate ``estimator`` (``None``: the default) for ``task`` with ``params``."""
    check_estimator(estimator, task)
    name = DEFAULT_ESTIMATOR if estimator is None else estimator
    cls = load_class(name, task) if is_external(name) else ESTIMATORS[task][name]
    defaults: dict[str, Any] = {}
    known = cls().get_params()
    if "random_state" in known:
        defaults["random_state"] = seed
    if cls is LogisticRegression:
        defaults["max_iter"] = 1000
    if cls.__module__.startswith("lightgbm") and "verbose" not in params:
        # LightGBM prints a warning per split it cannot make ("No further splits with
        # positive gain"); its own -1 silences them, errors still raise.
        defaults["verbose"] = -1
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
    branches = [("numeric", numeric, plan.numeric), ("categorical", categorical, plan.categorical)]
    if plan.datetime:  # only then: models without dates stay plain scikit-learn
        calendar = Pipeline([
            ("calendar", CalendarFeatures()),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ])
        branches.append(("datetime", calendar, plan.datetime))
    preprocess = ColumnTransformer(branches, remainder="drop")
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def rare_classes(y: pd.Series, below: int = RARE_CLASS_ROWS) -> dict[str, int]:
    """Classes of ``y`` with fewer than ``below`` rows, rarest first, with their counts."""
    counts = y.value_counts(sort=False)
    rare = counts[counts < below].sort_values(kind="stable")
    return {str(label): int(n) for label, n in rare.items()}


def warn_rare_classes(y: pd.Series, target: str) -> None:
    """Log a warning naming the classes too rare to learn or test reliably."""
    rare = rare_classes(y)
    if not rare:
        return
    listed = ", ".join(f"{label!r} ({n})" for label, n in list(rare.items())[:10])
    more = f" and {len(rare) - 10} more" if len(rare) > 10 else ""
    log.warning(
        "%d of %d classes of target %r have fewer than %d training rows: %s%s. The model "
        "sees few examples of them and the held-out metrics rest on a row or two of each "
        "(or none). Collect more rows for them, or merge them into a broader class upstream",
        len(rare), y.nunique(), target, RARE_CLASS_ROWS, listed, more)


def _rows(count: int) -> str:
    return f"{count} row" + ("" if count == 1 else "s")


def _stratified_validation_fits(counts: pd.Series, fraction: float = 0.1) -> bool:
    """Whether scikit-learn can hold out a stratified ``fraction`` of these class counts."""
    rows, classes = int(counts.sum()), len(counts)
    held_out = -(-rows * fraction // 1)  # scikit-learn rounds the held-out count up
    return counts.min() >= 2 and held_out >= classes and rows - held_out >= classes


def class_count_defaults(
    estimator: str | None, params: dict[str, Any], y: pd.Series
) -> tuple[dict[str, Any], list[str]]:
    """Gradient boosting parameters the class counts call for, and why, in words.

    Only parameters ``params`` leaves unset: the user's choice always wins.
    - many classes (estimator left to us, ``None``, only): ``max_iter`` within BOOSTING_TREE_BUDGET;
    - a class too rare for scikit-learn's automatic early stopping (past
      AUTO_EARLY_STOPPING_ROWS rows it holds out a stratified share, which raises when a
      class has one row): ``early_stopping=False``, where it would otherwise crash.
    """
    if estimator not in (None, "hist_gradient_boosting"):
        return {}, []
    counts = y.value_counts()
    defaults: dict[str, Any] = {}
    reasons = []
    if estimator is None and len(counts) > MANY_CLASSES and "max_iter" not in params:
        iterations = max(MIN_BOOSTING_ITERATIONS, BOOSTING_TREE_BUDGET // len(counts))
        if iterations < 100:  # scikit-learn's default max_iter
            defaults["max_iter"] = iterations
            reasons.append(
                f"{len(counts)} classes: gradient boosting fits one tree per class per "
                f"iteration, so max_iter is {iterations} instead of 100 "
                f"({iterations * len(counts):,} trees); set max_iter in --params to change it")
    if ("early_stopping" not in params and len(y) > AUTO_EARLY_STOPPING_ROWS
            and not _stratified_validation_fits(counts)):
        defaults["early_stopping"] = False
        reasons.append(
            f"{len(y):,} rows would turn on early stopping on a stratified 10 % validation "
            f"share, which class {str(counts.idxmin())!r} ({_rows(int(counts.min()))}) "
            "cannot be split into: early_stopping is false")
    return defaults, reasons


@dataclass
class TrainingSetup:
    """An unfitted model and the prepared rows it learns from (training and tuning)."""

    model: Pipeline
    inputs: pd.DataFrame
    y: pd.Series
    plan: FeaturePlan
    params: dict[str, Any]


def prepare_training(frame: pd.DataFrame, settings: TrainingSettings) -> TrainingSetup:
    """Choose features, prepare the rows with a target, and build the unfitted model."""
    target, task = settings.fitting()
    labelled = frame[frame[target].notna()]
    plan = plan_features(labelled, target)
    inputs = prepare_inputs(labelled, plan)
    refuse_infinite(inputs, plan.numeric, "training")
    y = (class_labels(labelled[target]) if task == "classification"
         else labelled[target].astype(float))
    if task == "regression" and np.isinf(y.to_numpy()).any():
        raise DataError(
            f"target {target!r} holds {int(np.isinf(y.to_numpy()).sum())} infinite values "
            "(inf or -inf); a regressor cannot learn from them. Replace or drop those rows "
            "in the source"
        )
    parsed = dict(settings.params)
    if task == "classification":
        warn_rare_classes(y, target)
        defaults, reasons = class_count_defaults(settings.estimator, parsed, y)
        for reason in reasons:
            log.warning("%s", reason)
        # Recorded with the parameters set for this model (card, fingerprint).
        parsed = {**defaults, **parsed}
    estimator = make_estimator(task, settings.estimator, parsed, settings.seed)
    if task == "classification" and is_external(settings.estimator):
        # XGBoost takes labels 0..n-1 only; the wrapper answers with the original ones.
        estimator = LabelEncoded(estimator)
    model = build_pipeline(plan, estimator)
    return TrainingSetup(model, inputs, y, plan, parsed)


def train_model(frame: pd.DataFrame, settings: TrainingSettings) -> tuple[Pipeline, ModelMetadata]:
    """Fit a Pipeline on ``frame``; return it with metadata describing its inputs."""
    target, task = settings.fitting()
    setup = prepare_training(frame, settings)
    model, inputs, plan, parsed = setup.model, setup.inputs, setup.plan, setup.params
    model.fit(inputs, setup.y)
    features = [
        Feature(
            name=c, dtype=str(inputs[c].dtype),
            kind=plan.kind(c),
        )
        for c in plan.columns
    ]
    fitted = model.named_steps["estimator"]
    fitted = fitted.estimator if isinstance(fitted, LabelEncoded) else fitted
    package = package_of(fitted)
    metadata = ModelMetadata(
        task=task,
        target=target,
        features=features,
        estimator=type(fitted).__name__,
        estimator_package=package[0] if package else None,
        estimator_package_version=package[1] if package else None,
        params=parsed,
        classes=[str(c) for c in model.classes_] if task == "classification" else None,
        dropped_columns=plan.dropped,
        date_features=_date_features(model) if plan.datetime else {},
    )
    return model, metadata


def _date_features(model: Pipeline) -> dict[str, list[str]]:
    """Date column -> the calendar parts the fitted model derives from it."""
    branch = model.named_steps["preprocess"].named_transformers_["datetime"]
    return dict(branch.named_steps["calendar"].parts_)
