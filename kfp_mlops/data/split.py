"""Seeded train/test split, stratified for classification when every class can be.

The split is the suite's own, in numpy: every row draws a random key from the seed, and
within each class the rows with the smallest keys are held out, as many as the class's
share of the test size (largest remainders get the rounding). It needs no scikit-learn,
whose import alone (1.6 s here) used to be most of the split task; the rows keep their
file order on both sides.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data import arrow_numpy
from kfp_mlops.data.parquet import write_parquet
from kfp_mlops.errors import DataError


def split_positions(
    codes: np.ndarray, test_size: float = 0.2, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (train, test), both ascending, for integer class ``codes`` (>= 0).

    ``ceil(test_size * rows)`` rows are held out (scikit-learn's rounding), each class
    giving its proportional share. All zeros split unstratified; so do classes that
    cannot all be in both splits (a class with one row, or more classes than test rows).
    """
    rows = len(codes)
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size {test_size} must be between 0 and 1 (e.g. 0.2)")
    n_test = math.ceil(test_size * rows)
    if not 0 < n_test < rows:
        raise DataError(
            f"test_size {test_size} of {rows} labelled rows leaves an empty split; "
            "use more rows or a test_size that holds out some but not all of them"
        )
    counts = np.bincount(codes)
    if counts.min() < 2 or n_test < len(counts):
        codes, counts = np.zeros_like(codes), np.array([rows])
    quota = counts * (n_test / rows)
    per_class = np.floor(quota).astype(np.int64)
    short = n_test - int(per_class.sum())
    per_class[np.argsort(per_class - quota, kind="stable")[:short]] += 1
    key = np.random.default_rng(seed).random(rows)
    order = np.lexsort((key, codes))  # by class, then by random key
    rank = np.empty(rows, dtype=np.int64)
    rank[order] = np.arange(rows) - np.repeat(np.cumsum(counts) - counts, counts)
    held_out = rank < per_class[codes]
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def split_frame(frame, target: str, task: str, test_size: float = 0.2, seed: int = 42):
    """Split the rows of a pandas frame that have a target into (train, test) frames.

    The same rows as :func:`split_file` on that frame written as Parquet.
    """
    import pandas as pd

    labelled = frame[frame[target].notna()]
    codes = np.zeros(len(labelled), dtype=np.int64)
    if task == "classification":
        codes = pd.factorize(labelled[target].astype(str))[0].astype(np.int64)
    train, test = split_positions(codes, test_size, seed)
    return (labelled.iloc[train].reset_index(drop=True),
            labelled.iloc[test].reset_index(drop=True))


def split_file(
    path: str | Path,
    train_path: str | Path,
    test_path: str | Path,
    target: str,
    task: str,
    test_size: float = 0.2,
    seed: int = 42,
) -> tuple[int, int]:
    """Split the Parquet file at ``path`` into two Parquet files; return their row counts.

    Rows without a target are left out. Rows move as Arrow data (``take``), never
    through pandas objects.
    """
    # ParquetFile.read, not pq.read_table: the latter imports pyarrow.dataset and pandas.
    table = pq.ParquetFile(path).read()
    if target not in table.column_names:
        raise DataError(f"data has no target column {target!r}")
    column = table.column(target)
    labelled = np.flatnonzero(arrow_numpy.valid(column.combine_chunks()))
    codes = np.zeros(len(labelled), dtype=np.int64)
    if task == "classification":
        values = column.take(arrow_numpy.positions(labelled)).combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        # Codes in order of first appearance, as pandas.factorize numbers them.
        codes = arrow_numpy.values(values.cast(pa.string()).dictionary_encode().indices).astype(
            np.int64)
    train, test = split_positions(codes, test_size, seed)
    for rows, out in ((train, train_path), (test, test_path)):
        write_parquet(table.take(arrow_numpy.positions(labelled[rows])), out)
    return len(train), len(test)

