"""Shared data for the data life-cycle tests: real bundled data and generated frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from kfp_mlops.storage import LocalStore


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def make_frame(n: int, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Mixed-type table; ``shift`` moves the numbers and re-weights the categories."""
    rng = np.random.default_rng(seed)
    weights = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]
    frame = pd.DataFrame({
        "age": rng.normal(40 + 10 * shift, 10, n),
        "income": rng.lognormal(10 + shift, 0.5, n),
        "visits": rng.integers(0, 50, n),
        "city": rng.choice(["paris", "lyon", "nice"], n, p=weights),
        "member": rng.random(n) < 0.4,
    })
    frame.loc[frame.index % 17 == 0, "income"] = np.nan
    return frame


@pytest.fixture
def frame_factory():
    """``make_frame`` as a fixture (test modules do not import conftest)."""
    return make_frame


@pytest.fixture
def mixed() -> pd.DataFrame:
    return make_frame(2000)
