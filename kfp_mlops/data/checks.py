"""Basic fitness checks before training: target present, enough rows, a usable target."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kfp_mlops.data.sources import DataError

TASKS = ("classification", "regression")
# An integer target with at most this many distinct values is read as class labels.
MAX_CLASSES_FOR_INTEGER_TARGET = 20
MIN_ROWS = 20


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
    task = task or infer_task(labelled[target])
    classes = None
    if task == "classification":
        counts = labelled[target].astype(str).value_counts()
        if len(counts) < 2:
            raise DataError(
                f"target {target!r} has a single class ({counts.index[0]!r}) in "
                f"{len(labelled)} rows; "
                "a classifier needs at least two. Check the data or the target column"
            )
        classes = sorted(counts.index.tolist())
    elif not pd.api.types.is_numeric_dtype(labelled[target]):
        raise DataError(
            f"task is regression but target {target!r} holds text such as "
            f"{labelled[target].iloc[0]!r}; use --task classification or a numeric target"
        )
    return DataCheck(task=task, rows=len(labelled), columns=len(names) - 1, classes=classes)


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
