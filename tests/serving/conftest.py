"""Fixtures for the serving tests: real models, and real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kfp_mlops.serving.process import running_server
from tests.serving.serving_models import diabetes, penguins, write_classifier, write_regressor


@pytest.fixture(scope="session")
def penguins_rows() -> pd.DataFrame:
    """Held-out-like penguin rows: every 7th row plus every row with a missing value."""
    x, _ = penguins()
    with_nan = set(np.flatnonzero(x.isna().any(axis=1).to_numpy()).tolist())
    return x.iloc[sorted(set(range(0, len(x), 7)) | with_nan)].reset_index(drop=True)


@pytest.fixture(scope="session")
def diabetes_rows() -> pd.DataFrame:
    x, _ = diabetes()
    return x.iloc[::9].reset_index(drop=True)


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_classifier(tmp_path_factory.mktemp("penguins") / "v1")


@pytest.fixture(scope="session")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_regressor(tmp_path_factory.mktemp("diabetes") / "v1")


@pytest.fixture(scope="session")
def classifier_url(classifier_dir: Path) -> Iterator[str]:
    """A real ModelServer (subprocess, 127.0.0.1, free port) serving the classifier."""
    with running_server(classifier_dir, "penguins", timeout_s=60) as server:
        yield server.base_url


@pytest.fixture(scope="session")
def regressor_url(regressor_dir: Path) -> Iterator[str]:
    with running_server(regressor_dir, "diabetes", timeout_s=60) as server:
        yield server.base_url


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)
