"""The one-pass column conversion gives what the value-by-value check gives, or defers to it.

``decoding._json_column`` converts a column of plain JSON values with numpy at once;
``decoding._checked_column`` is the careful path that names a refused value. Every
column the fast path accepts must come out the same as from the careful path, and every
column it declines must still be refused (or accepted) by the careful path.
"""

from __future__ import annotations

import numpy as np
import pytest

from kfp_mlops.data.kinds import dtype_family
from kfp_mlops.model.package import Feature
from kfp_mlops.serving import decoding
from kfp_mlops.serving.decoding import InputSchemaError, coerce_column
from kfp_mlops.serving.predictor import INLINE_BYTES, INLINE_ROWS, _small

COLUMNS = [
    ("float64", [1.5, 2, None, float("nan"), -3]),
    ("float64", [1.0, 2.0]),
    ("int64", [2007, 2008, 2009]),
    ("int64", [2007, None]),
    ("int64", [1.5, 2]),
    ("float32", [10**300, -(10**300)]),
    ("object", ["a", "b"]),
    ("object", ["a", None]),
    ("bool", [True, False]),
    ("bool", [True, None]),
    ("float64", [np.float64(1.0), 2.0]),  # numpy scalars (in-process callers)
]


def careful(feature: Feature, values: list) -> np.ndarray:
    family = dtype_family(feature.dtype)
    out, nulls = decoding._checked_column(feature, family, values, lambda i: f"[{i}]")
    if not nulls and family == "numeric" and feature.dtype.startswith("int"):
        if np.all(np.floor(out) == out) and np.all(np.abs(out) < 2.0**63):
            return out.astype(feature.dtype)
    if not nulls and family == "boolean":
        return out.astype(bool)
    return out


@pytest.mark.parametrize(("dtype", "values"), COLUMNS, ids=repr)
def test_the_fast_path_gives_what_the_careful_path_gives(dtype, values):
    feature = Feature("x", dtype, "numeric", True)
    got, want = coerce_column(feature, values, lambda i: f"[{i}]"), careful(feature, values)
    assert got.dtype == want.dtype
    assert len(got) == len(want)
    for a, b in zip(got.tolist(), want.tolist(), strict=True):
        assert a == b or (a != a and b != b), (a, b)  # NaN == NaN here


@pytest.mark.parametrize(
    ("dtype", "values", "nullable", "reason", "says"),
    [
        ("float64", [1.0, True], True, "wrong_type", "[1] is bool True"),
        ("float64", [1.0, "2"], True, "wrong_type", "[1] is str '2'"),
        ("float64", [1.0, 10**400], True, "wrong_type", "infinite or out-of-range value at [1]"),
        ("float64", [1.0, float("inf")], True, "wrong_type", "infinite"),
        ("float64", [1.0, None], False, "null_value", "[1] is null/NaN"),
        ("object", ["a", 3], True, "wrong_type", "[1] is int 3"),
        ("object", [None, "a"], False, "null_value", "[0] is null/NaN"),
        ("bool", [True, 1], True, "wrong_type", "[1] is int 1"),
    ],
)
def test_a_column_the_fast_path_declines_is_refused_by_name(dtype, values, nullable, reason,
                                                            says):
    feature = Feature("x", dtype, "numeric", nullable)
    with pytest.raises(InputSchemaError) as raised:
        coerce_column(feature, values, lambda i: f"[{i}]")
    assert raised.value.reason_code == reason
    assert says in str(raised.value)


def test_small_requests_are_told_by_rows_and_body_size():
    one = {"instances": [[1.0]]}
    assert _small(one, None)
    assert _small(one, {"content-length": "100"})
    assert not _small(one, {"content-length": str(INLINE_BYTES + 1)})
    assert not _small(one, {})  # no content-length (chunked): the thread pool
    assert not _small({"instances": [[1.0]] * (INLINE_ROWS + 1)}, None)
    assert not _small(b'{"instances": [[1.0]]}', None)  # a raw body: not parsed yet


@pytest.mark.parametrize("values", [
    ["Adelie", "Gentoo"],  # the usual labels: kept as they are
    [np.str_("Adelie"), np.int64(3), np.float64(0.5), np.bool_(True), None, [np.int64(1)]],
])
def test_v1_response_holds_only_json_values(values):
    """An object array of predictions comes out as plain Python values, numpy's converted."""
    import json

    from kfp_mlops.serving.predictor import Scored, SklearnFolderModel

    predictions = np.empty(len(values), dtype=object)
    predictions[:] = values
    body = SklearnFolderModel("m", ".")._v1_response(Scored(predictions))
    assert body["predictions"] == [v.item() if isinstance(v, np.generic) else
                                   [1] if isinstance(v, list) else v for v in values]
    assert all(type(v) in (str, int, float, bool, type(None), list)
               for v in body["predictions"])
    json.dumps(body)  # the standard library's encoder refuses numpy scalars
