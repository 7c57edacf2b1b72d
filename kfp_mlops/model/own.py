"""Your own training step, the suite's gates: what a training step must output.

A team with its own training code keeps it, and puts it between the suite's data gate
and its evaluate / bless / publish / infra-validate / deploy steps (see
``examples/own_training/`` and docs/tuning-and-card.md, "Your own training
component"). Those steps read one thing from training: a **model folder**, as
:func:`write_trained_model` writes it:

- ``model.joblib``: the fitted model, pickled with joblib. It must be
  scikit-learn-compatible: ``predict(frame)`` on a pandas DataFrame of the feature
  columns (``predict_proba`` too, for a classifier's AUC, log loss and curves), with
  everything it needs to go from those raw columns to a prediction inside it (a
  scikit-learn ``Pipeline`` is the usual way). Everything it unpickles must be importable
  where it is served: scikit-learn, kfp-mlops, and any library recorded below.
- ``metadata.json``: the task, target, feature schema (name, dtype, kind of each input
  column), classes, and the sha256 of ``model.joblib`` and the versions it was built with;
  the loader verifies the sha256 and refuses another scikit-learn (or estimator library)
  version than the one recorded.

The suite then hands the model what it handed the suite's own models: a DataFrame of the
feature columns in metadata order, numbers as float64 and text as ``str``, with
``NaN`` for a missing value, dates as ISO text; classifications are compared as text
(class ``1`` is ``"1"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kfp_mlops.data.kinds import CATEGORICAL, NUMERIC
from kfp_mlops.errors import DataError
from kfp_mlops.model.package import Feature, ModelMetadata, write_model_folder
from kfp_mlops.model.settings import check_task


def feature_schema(inputs) -> list[Feature]:
    """The features of the frame a model was fitted on: numbers numeric, the rest text.

    Booleans and text are categorical; ``dtype`` is the pandas dtype name the served
    request is checked against (``float64``, ``int64``, ``object``, ``bool``).
    """
    import pandas as pd

    features = []
    for name in inputs.columns:
        column = inputs[name]
        number = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        dtype = str(column.dtype) if number or pd.api.types.is_bool_dtype(column) else "object"
        features.append(Feature(name=str(name), dtype=dtype,
                                kind=NUMERIC if number else CATEGORICAL))
    return features


def write_trained_model(
    model: Any,
    inputs,
    *,
    target: str,
    task: str,
    folder: str | Path,
    params: dict[str, Any] | None = None,
    name: str | None = None,
    dataset_version: str | None = None,
    data_sha256: str | None = None,
) -> ModelMetadata:
    """Write ``model`` as a model folder the suite's evaluate, bless, publish and serve accept.

    Args:
        model: The fitted model (see the module docstring for what it must do).
        inputs: The feature columns it was fitted on (a DataFrame without the target):
            their names, order and dtypes become the served schema.
        target: The target column.
        task: ``classification`` or ``regression``.
        folder: The training component's output model path (``model.path``).
        params: Parameters worth recording on the card (optional).
        name: The registry name (lineage, recorded only).
        dataset_version: The dataset version trained on (recorded only).
        data_sha256: The sha256 of the data trained on (recorded only).

    Returns the metadata written (with sha256 and versions filled in).
    """
    check_task(task)
    if not callable(getattr(model, "predict", None)):
        raise DataError(f"the model {type(model).__name__} has no predict(); the suite "
                        "serves and evaluates models through predict(DataFrame)")
    if target in inputs.columns:
        raise DataError(f"inputs hold the target {target!r}; pass the feature columns only")
    classes = None
    if task == "classification":
        found = getattr(model, "classes_", None)
        if found is None:
            raise DataError(f"the classifier {type(model).__name__} has no classes_; fit it "
                            "first (scikit-learn classifiers set classes_ when fitted)")
        classes = [str(c) for c in found]
    from kfp_mlops.model.estimators import package_of

    estimator = model
    steps = getattr(model, "named_steps", None)
    if isinstance(steps, dict) and steps:
        estimator = list(steps.values())[-1]
    package = package_of(estimator)
    metadata = ModelMetadata(
        task=task, target=target, features=feature_schema(inputs),
        estimator=type(estimator).__name__, params=dict(params or {}), classes=classes,
        estimator_package=package[0] if package else None,
        estimator_package_version=package[1] if package else None,
        name=name, dataset_version=dataset_version, data_sha256=data_sha256,
    )
    return write_model_folder(model, metadata, folder)
