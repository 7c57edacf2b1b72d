"""Decide which columns can be features, and how the model treats each.

Columns that cannot help are dropped with a reason instead of crashing training:
all-empty, constant, identifier-like text (one distinct value per row: ids, free text).
Date and timestamp columns (timestamps, or text that parses as dates) become calendar
features inside the model (:mod:`kfp_mlops.model.calendar`): the model then needs
kfp-mlops to load (the suite's image), not only scikit-learn.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kfp_mlops.data.kinds import CATEGORICAL, DATETIME, NUMERIC
from kfp_mlops.data.log_columns import is_log_column

log = logging.getLogger(__name__)

# A text column whose distinct values cover this share of the rows is an identifier or
# free text: one-hot encoding it would memorise rows, not learn.
IDENTIFIER_DISTINCT_SHARE = 0.9
# Text that parses as a date in this share of sampled non-empty cells is a date column.
DATE_PARSE_SHARE = 0.9


@dataclass
class FeaturePlan:
    """The features the model uses and the columns it drops (with why)."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    datetime: list[str] = field(default_factory=list)  # calendar features

    @property
    def columns(self) -> list[str]:
        """All feature columns in input order."""
        return self.numeric + self.categorical + self.datetime

    def kind(self, name: str) -> str:
        """How the model treats column ``name``: a kind of kinds.FEATURE_KINDS."""
        return (NUMERIC if name in self.numeric else DATETIME if name in self.datetime
                else CATEGORICAL)


def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).head(200)
    if sample.empty or sample.str.fullmatch(r"-?\d+(\.\d+)?").all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= DATE_PARSE_SHARE


def class_labels(values: pd.Series) -> pd.Series:
    """A classification target's values as the class names the model learns (text).

    An integer target with missing labels is read back as floats (a CSV with blank
    cells, a prediction log with late labels); its whole numbers name the same classes
    as the integers (``1.0`` is class ``"1"``, not ``"1.0"``), so a model trained on the
    complete column and one trained on the gappy one agree on their classes.
    """
    present = values.dropna()
    if pd.api.types.is_float_dtype(values) and len(present) and bool(
            (present == np.round(present)).all()):
        values = values.astype("Int64")
    return values.astype(str)


def plan_features(frame: pd.DataFrame, target: str) -> FeaturePlan:
    """Sort the non-target columns of ``frame`` into numeric, categorical and dropped."""
    plan = FeaturePlan()
    rows = len(frame)
    for name in frame.columns:
        if name == target:
            continue
        if is_log_column(name):
            plan.dropped[name] = "prediction log column (what was served, not a feature)"
            continue
        column = frame[name]
        present = column.dropna()
        number = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        # Numbers are constant when min == max; hashing every value to count distinct
        # ones took 0.8 s of training set-up on 800k rows. Text is counted once.
        distinct = None if number or present.empty else present.nunique()
        if present.empty:
            plan.dropped[name] = "all values are missing"
        elif (present.min() == present.max()) if number else distinct == 1:
            plan.dropped[name] = f"constant (every value is {present.iloc[0]!r})"
        elif pd.api.types.is_datetime64_any_dtype(column) or (
            column.dtype == object and _looks_like_dates(column)
        ):
            plan.datetime.append(name)
        elif pd.api.types.is_bool_dtype(column):
            plan.categorical.append(name)
        elif pd.api.types.is_numeric_dtype(column):
            plan.numeric.append(name)
        elif rows >= 20 and distinct >= IDENTIFIER_DISTINCT_SHARE * len(present):
            plan.dropped[name] = (
                f"identifier-like text ({distinct} distinct values in {len(present)} rows)"
            )
        else:
            plan.categorical.append(name)
    for name, reason in plan.dropped.items():
        log.warning("dropping column %r: %s", name, reason)
    if not plan.columns:
        from kfp_mlops.data.sources import DataError

        raise DataError(
            "no usable feature columns: " + "; ".join(f"{k}: {v}" for k, v in plan.dropped.items())
        )
    return plan


def prepare_inputs(frame: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """Select the plan's columns with the dtypes the model expects.

    Categorical cells become ``object`` with ``np.nan`` for missing values (what
    ``SimpleImputer`` and ``OneHotEncoder`` accept), numbers become ``float64``.
    """
    columns: dict[str, pd.Series] = {}
    for name in plan.numeric:
        columns[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    # Dates travel as text (ISO for timestamps), as a client sends them; the model's
    # calendar step parses them (kfp_mlops.model.calendar).
    for name in plan.categorical + plan.datetime:
        column = frame[name]
        columns[name] = column.astype(str).astype(object).where(column.notna(), np.nan)
    # One frame built at once: inserting columns one by one fragments it (pandas warns,
    # and 2,000 inserts took seconds).
    return pd.DataFrame(columns, index=frame.index)


def refuse_infinite(inputs: pd.DataFrame, columns: list[str], rows: str) -> None:
    """Raise :class:`DataError` naming each of ``columns`` that holds +inf or -inf.

    scikit-learn refuses infinite inputs with "Input X contains infinity" and no column
    name. They are not read as missing values: the served model would still fail on
    them, and they usually mean a bug upstream (a division by zero). ``rows`` says
    which rows these are ("training", "evaluation").
    """
    counts = {}
    for name in columns:
        found = int(np.isinf(inputs[name].to_numpy(dtype=np.float64, na_value=np.nan)).sum())
        if found:
            counts[name] = found
    if counts:
        from kfp_mlops.errors import DataError

        listed = ", ".join(f"{name!r} ({n})" for name, n in list(counts.items())[:20])
        more = f" and {len(counts) - 20} more" if len(counts) > 20 else ""
        raise DataError(
            f"the {rows} rows hold infinite values (inf or -inf) in column(s) {listed}{more}; "
            "no model can learn from or score them. Replace them in the source (they often "
            "come from a division by zero): with an empty value if unknown (the model "
            "imputes it), or a finite bound. The data gate reports them as well"
        )


def plan_from_metadata(metadata) -> FeaturePlan:
    """The feature plan a trained model's metadata records."""
    return FeaturePlan(
        numeric=[f.name for f in metadata.features if f.kind == NUMERIC],
        categorical=[f.name for f in metadata.features if f.kind == CATEGORICAL],
        datetime=[f.name for f in metadata.features if f.kind == DATETIME],
    )


def model_inputs(frame: pd.DataFrame, metadata) -> pd.DataFrame:
    """``frame``'s feature columns prepared exactly as training prepared them."""
    return prepare_inputs(frame, plan_from_metadata(metadata))[metadata.feature_names]
