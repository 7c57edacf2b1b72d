"""Calendar features of date and timestamp columns, inside the model's Pipeline.

A date column is neither a number nor a category: as text every day is a new category,
as a raw timestamp a tree splits on "before/after some instant". What usually carries
signal is the calendar: the year, the month, the day of the week and, for timestamps,
the hour. :class:`CalendarFeatures` derives them in the pickled Pipeline itself, so
training, the suite's server (V1 and V2) and batch scoring compute them the same way
from the same raw values (ISO text or timestamps); a value that does not parse is
missing and imputed like any other.

The hour is kept only for a column whose training values carry a time of day (not all
midnight): a plain date gets year, month and day of week.

The class lives in the core library, so a model using it loads wherever kfp-mlops is
installed (the suite's image); KServe's stock sklearn server lacks it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

PARTS = ("year", "month", "day_of_week", "hour")


def parse_dates(values) -> pd.Series:
    """``values`` as UTC timestamps; what does not parse is ``NaT``.

    Naive values are taken as UTC; values with an offset are converted to UTC, so one
    column may mix them.
    """
    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        if series.dt.tz is None:
            return series.dt.tz_localize("UTC")
        return series.dt.tz_convert("UTC")
    text = series.astype(object).where(series.notna(), None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": mixed is intended
        return pd.to_datetime(text, errors="coerce", format="mixed", utc=True)


def _part(stamps: pd.Series, part: str) -> np.ndarray:
    values = {"year": stamps.dt.year, "month": stamps.dt.month,
              "day_of_week": stamps.dt.dayofweek, "hour": stamps.dt.hour}[part]
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


class CalendarFeatures(TransformerMixin, BaseEstimator):
    """Year, month, day of week (and hour, where present) of each input column."""

    def fit(self, X, y=None):
        """Record the columns and which of them carry a time of day."""
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.parts_: dict[str, list[str]] = {}
        for name in frame.columns:
            stamps = parse_dates(frame[name].to_numpy()).dropna()
            timed = bool(((stamps.dt.hour != 0) | (stamps.dt.minute != 0)).any())
            self.parts_[str(name)] = [p for p in PARTS if p != "hour" or timed]
        return self

    def transform(self, X):
        """One float column per (input column, calendar part); missing where unparsed."""
        frame = pd.DataFrame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} date columns, got {frame.shape[1]}")
        out = []
        for position, (_, parts) in enumerate(self.parts_.items()):
            stamps = parse_dates(frame.iloc[:, position].to_numpy())
            out.extend(_part(stamps, part) for part in parts)
        if not out:
            return np.empty((len(frame), 0))
        return np.column_stack(out)

    def get_feature_names_out(self, input_features=None):
        """``column_year``, ``column_month``, ... in output order."""
        return np.asarray([f"{name}_{part}" for name, parts in self.parts_.items()
                           for part in parts], dtype=object)
