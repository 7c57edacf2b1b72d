"""Seeded train/test split, stratified for classification when every class can be."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from kfp_mlops.data.sources import DataError


def split_frame(
    frame: pd.DataFrame, target: str, task: str, test_size: float = 0.2, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the rows that have a target into (train, test)."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size {test_size} must be between 0 and 1 (e.g. 0.2)")
    labelled = frame[frame[target].notna()]
    stratify = None
    if task == "classification":
        counts = labelled[target].astype(str).value_counts()
        # Stratifying needs two rows per class and a test split with room for every class.
        if counts.min() >= 2 and round(test_size * len(labelled)) >= len(counts):
            stratify = labelled[target].astype(str)
    train, test = train_test_split(
        labelled, test_size=test_size, random_state=seed, stratify=stratify
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)
