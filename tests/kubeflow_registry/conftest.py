"""Fixtures of the Kubeflow Model Registry tests: the HTTP double, a model folder, a store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.kubeflow_registry.model_registry_double import (  # noqa: E402
    ModelRegistryDouble,
    serve,
)


@pytest.fixture
def mr() -> Iterator[ModelRegistryDouble]:
    """A Model Registry v0.3.4 double on 127.0.0.1; no request or response may break the spec."""
    with serve() as double:
        yield double
    assert double.violations == [], "\n".join(double.violations)


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory) -> Path:
    """A real, tiny scikit-learn model written with ``write_model_folder``."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from kfp_mlops.model.package import Feature, ModelMetadata, write_model_folder

    data = load_iris(as_frame=True)
    metadata = ModelMetadata(
        task="classification", target="target",
        features=[Feature(c, "float64", "numeric") for c in data.data.columns],
        estimator="LogisticRegression", classes=[0, 1, 2],
        metrics={"accuracy": 0.97, "f1_macro": 0.96}, dataset_version="d-1234",
        data_sha256="ab" * 32,
    )
    folder = tmp_path_factory.mktemp("model")
    write_model_folder(LogisticRegression(max_iter=200).fit(data.data, data.target),
                       metadata, folder)
    return folder
