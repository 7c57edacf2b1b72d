"""Basic fitness checks before training: target present, enough rows, a usable target.

They read the target column alone (the check step does not load the features), and
refuse early what would otherwise fail (or run for minutes) inside training: a target
with infinite values, and a classification target that is really continuous, or has so
many classes that there are too few rows to learn and test each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kfp_mlops.data.sources import DataError

TASKS = ("classification", "regression")
# An integer target with at most this many distinct values is read as class labels.
MAX_CLASSES_FOR_INTEGER_TARGET = 20
MIN_ROWS = 20
# Past MAX_CLASSES_FOR_INTEGER_TARGET classes, a classification target needs this many
# labelled rows per class on average. Fewer means the "classes" are mostly one-off values
# (a continuous number, an identifier): training would fit one model per class for
# minutes and then fail or learn nothing.
MIN_ROWS_PER_CLASS = 10


@dataclass(frozen=True)
class DataCheck:
    """What the checks found: the task to train and the shape of the data."""

    task: str
    rows: int
    columns: int
    classes: list[str] | None


def infer_task(target: pd.Series) -> str:
    """Classification for text, bool and small-integer targets; regression otherwise."""
    values = target.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification"
    if pd.api.types.is_integer_dtype(values) or (values % 1 == 0).all():
        if values.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET:
            return "classification"
    return "regression"


def check_training_data(
    frame: pd.DataFrame,
    target: str,
    task: str | None = None,
    min_rows: int = MIN_ROWS,
    columns: list[str] | None = None,
) -> DataCheck:
    """Check ``frame`` can train a model for ``target``; raise :class:`DataError` if not.

    ``columns`` names every column of the data when ``frame`` holds only the target
    (so large data need not be read whole for these checks).
    """
    names = pd.Index(columns if columns is not None else frame.columns)
    if names.duplicated().any():
        dupes = sorted(set(names[names.duplicated()]))
        raise DataError(
            f"column names {dupes} appear more than once; rename them so each is unique"
        )
    if target not in names:
        raise DataError(
            f"target column {target!r} is not in the data; its columns are "
            f"{_preview(list(names))}. Pass the right one with --target"
        )
    if task is not None and task not in TASKS:
        raise DataError(f"task {task!r} is unknown; use one of {', '.join(TASKS)} or leave it out")
    labelled = frame[frame[target].notna()]
    if len(labelled) < min_rows:
        raise DataError(
            f"only {len(labelled)} rows have a value in target {target!r}; at least {min_rows} "
            "are needed to train and hold out a test split. Give more data"
        )
    if len(names) < 2:
        raise DataError(
            f"the data has only the target column {target!r}; there is nothing to learn from"
        )
    values = labelled[target]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:
        infinite = int(np.isinf(values.to_numpy(dtype=np.float64)).sum())
        if infinite:
            raise DataError(
                f"target {target!r} holds {infinite} infinite values (inf or -inf); no model "
                "can learn from them. Replace or drop those rows in the source"
            )
    task = task or infer_task(values)
    classes = None
    if task == "classification":
        counts = values.astype(str).value_counts()
        if len(counts) < 2:
            raise DataError(
                f"target {target!r} has a single class ({counts.index[0]!r}) in "
                f"{len(labelled)} rows; "
                "a classifier needs at least two. Check the data or the target column"
            )
        _refuse_too_many_classes(values, target, len(counts), numeric)
        classes = sorted(counts.index.tolist())
    elif not pd.api.types.is_numeric_dtype(labelled[target]):
        raise DataError(
            f"task is regression but target {target!r} holds text such as "
            f"{labelled[target].iloc[0]!r}; use --task classification or a numeric target"
        )
    return DataCheck(task=task, rows=len(labelled), columns=len(names) - 1, classes=classes)


def _refuse_too_many_classes(values: pd.Series, target: str, count: int, numeric: bool) -> None:
    """Refuse a classification target that is continuous or has too few rows per class."""
    rows = len(values)
    if count <= MAX_CLASSES_FOR_INTEGER_TARGET:
        return
    examples = ", ".join(repr(v) for v in values.drop_duplicates().head(3).tolist())
    if numeric and not (values % 1 == 0).all():
        raise DataError(
            f"target {target!r} holds continuous numbers ({count} distinct values in {rows} "
            f"rows, such as {examples}), but the task is classification: each value would "
            "become a class. Use --task regression (or leave --task out to infer it), or "
            "bin the target into classes upstream"
        )
    if count * MIN_ROWS_PER_CLASS > rows:
        hint = (
            "use --task regression if it is a quantity, or group its values into fewer classes"
            if numeric else
            "check that --target names the label column (not an identifier or free text), "
            "or group rare classes upstream"
        )
        raise DataError(
            f"target {target!r} has {count} classes in {rows} labelled rows (such as "
            f"{examples}): fewer than {MIN_ROWS_PER_CLASS} rows per class on average, too "
            f"few to learn and test each class ({count} classes need "
            f"{count * MIN_ROWS_PER_CLASS:,} rows or more); {hint}"
        )


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
