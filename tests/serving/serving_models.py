"""Small real models for the serving tests, written as model version folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfp_mlops.model.package import Feature, ModelMetadata, write_model_folder


def feature_schema(frame: pd.DataFrame) -> list[Feature]:
    """Features as the trainer records them: dtype, kind, nullable-if-seen-missing."""
    return [
        Feature(
            name=str(col),
            dtype=str(frame[col].dtype),
            kind="numeric" if pd.api.types.is_numeric_dtype(frame[col]) else "categorical",
            nullable=bool(frame[col].isna().any()),
        )
        for col in frame.columns
    ]


def tabular_pipeline(frame: pd.DataFrame, estimator: object) -> Pipeline:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c not in numeric]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return Pipeline([("pre", pre), ("model", estimator)])


def penguins() -> tuple[pd.DataFrame, pd.Series]:
    from palmerpenguins import load_penguins

    data = load_penguins()
    return data.drop(columns=["species"]), data["species"]


def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    return bunch.data, bunch.target


def write_classifier(folder: Path) -> Path:
    x, y = penguins()
    model = tabular_pipeline(x, LogisticRegression(max_iter=1000)).fit(x, y)
    meta = ModelMetadata(
        task="classification",
        target="species",
        features=feature_schema(x),
        estimator="LogisticRegression",
        classes=sorted(y.unique().tolist()),
        name="penguins",
        version=1,
    )
    write_model_folder(model, meta, folder)
    return folder


def write_regressor(folder: Path, estimator: object | None = None) -> Path:
    x, y = diabetes()
    model = tabular_pipeline(x, estimator if estimator is not None else Ridge()).fit(x, y)
    meta = ModelMetadata(
        task="regression",
        target="target",
        features=feature_schema(x),
        estimator=type(model.steps[-1][1]).__name__,
        name="diabetes",
        version=1,
    )
    write_model_folder(model, meta, folder)
    return folder
