"""The client side of the V1 and V2 protocols, without importing KServe.

Request encoders live here so that callers that only talk to a server (infra
validation, batch scoring, benchmarks) skip KServe's ~1 s import. A feature's value
family (:func:`kfp_mlops.data.kinds.dtype_family`) picks its V2 datatype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from kfp_mlops.data.kinds import BOOLEAN, CATEGORICAL, dtype_family
from kfp_mlops.model.package import Feature

PREDICTIONS = "predictions"
PROBABILITIES = "probabilities"


def v2_datatype(dtype: str) -> str:
    """The V2 tensor datatype a feature of pandas dtype ``dtype`` is sent as."""
    family = dtype_family(dtype)
    if family == CATEGORICAL:
        return "BYTES"
    if family == BOOLEAN:
        return "BOOL"
    return "INT64" if dtype.lower().startswith(("int", "uint")) else "FP64"


def _json_values(series: pd.Series) -> list[Any]:
    """Return a column as JSON-ready values, missing values as ``None``."""
    as_object = series.astype(object)
    return as_object.where(series.notna(), None).tolist()  # type: ignore[no-any-return]


def encode_v1(
    frame: pd.DataFrame,
    features: Sequence[Feature],
    records: bool = False,
    return_probabilities: bool = False,
) -> dict[str, Any]:
    """Client side: a V1 request body for ``frame`` (rows in feature order, or records)."""
    names = [f.name for f in features]
    columns = [_json_values(frame[n]) for n in names]
    rows = [list(r) for r in zip(*columns, strict=True)]
    instances: list[Any] = [dict(zip(names, r, strict=True)) for r in rows] if records else rows
    body: dict[str, Any] = {"instances": instances}
    if return_probabilities:
        body["return_probabilities"] = True
    return body


def encode_v2(
    frame: pd.DataFrame, features: Sequence[Feature], with_probabilities: bool = False
) -> dict[str, Any]:
    """Client side: a V2 request body for ``frame``, one pandas-typed input per feature."""
    inputs = [
        {
            "name": f.name,
            "shape": [len(frame)],
            "datatype": v2_datatype(f.dtype),
            "data": _json_values(frame[f.name]),
        }
        for f in features
    ]
    body: dict[str, Any] = {"parameters": {"content_type": "pd"}, "inputs": inputs}
    if with_probabilities:
        body["outputs"] = [{"name": PREDICTIONS}, {"name": PROBABILITIES}]
    return body
