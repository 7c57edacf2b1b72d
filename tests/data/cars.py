"""The cars data set that vega_datasets ships (406 cars: name, numbers, origin), in batches.

Data the rest of the suite has not seen: a free-text ``Name``, a ``Year`` date column,
missing values in ``Miles_per_Gallon`` and ``Horsepower``. Batches 1 and 2 are disjoint
random rows of the same world; batch 3 is the remaining rows with numeric columns
rescaled as inflation or a new product line would (weights x1.7, horsepower x1.9,
mpg x0.5). Nothing is downloaded: the JSON file is inside the wheel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Batch 3's shift: large factors, far past the ranges batch 1 shows.
SHIFT = {"Weight_in_lbs": 1.7, "Horsepower": 1.9, "Miles_per_Gallon": 0.5}
TARGET = "Miles_per_Gallon"


def cars() -> pd.DataFrame:
    """All 406 rows, ``Year`` as the ISO date text a CSV export holds."""
    from vega_datasets import data

    frame = data.cars()
    return frame.assign(Year=frame["Year"].dt.strftime("%Y-%m-%d"))


def cars_batches() -> dict[str, pd.DataFrame]:
    """``b1`` (180 rows), ``b2`` (113) and the shifted ``b3`` (113), disjoint."""
    frame = cars()
    order = np.random.default_rng(0).permutation(len(frame))
    parts = {"b1": order[:180], "b2": order[180:293], "b3": order[293:]}
    batches = {k: frame.iloc[np.sort(v)].reset_index(drop=True) for k, v in parts.items()}
    shifted = batches["b3"]
    for column, factor in SHIFT.items():
        shifted[column] = shifted[column] * factor
    shifted["Weight_in_lbs"] = shifted["Weight_in_lbs"].round().astype("int64")
    return batches
