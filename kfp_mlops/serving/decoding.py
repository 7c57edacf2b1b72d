"""Request decoding: a V1 or V2 inference request, checked, into the model's input frame.

Every request is checked against the feature schema in ``metadata.json`` before the
model sees it, so a client mistake is an HTTP 400 naming the field, never a 500.

V1 (``POST /v1/models/NAME:predict``)::

    {"instances": [[row values in feature order], ...], "return_probabilities": true}
    {"instances": [{"feature": value, ...}, ...]}

V2 / Open Inference Protocol (``POST /v2/models/NAME/infer``): one input per feature
column (``"parameters": {"content_type": "pd"}``), or a single ``[rows, features]``
tensor in feature order; ask for ``{"name": "probabilities"}`` in ``outputs``.

Named columns (V1 records, V2 column inputs) follow the input contract that batch
scoring follows too (:mod:`kfp_mlops.serving.contract`): every feature required, the
target and the columns training dropped ignored, any other column refused by name
unless unknown columns are ignored on request.

The model itself (loading, scoring, metrics) is :mod:`kfp_mlops.serving.predictor`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.extras import missing_kserve

try:
    # kserve is the 'serving' extra; orjson comes with it.
    import orjson
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput, InferRequest
except ModuleNotFoundError as exc:
    if exc.name not in ("kserve", "orjson"):
        raise
    raise missing_kserve("serving a model (kfp_mlops.serving)") from None

from kfp_mlops.data.kinds import BOOLEAN, CATEGORICAL, NUMERIC, dtype_family
from kfp_mlops.model.package import Feature
from kfp_mlops.serving.contract import InputContract

V1_FIELDS = ("instances", "return_probabilities")

# Numeric, string and boolean features accept these V2 tensor datatypes.
_V2_TYPES = {
    NUMERIC: {
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "FP16",
        "FP32",
        "FP64",
    },
    CATEGORICAL: {"BYTES"},
    BOOLEAN: {"BOOL"},
}


class InputSchemaError(InvalidInput, KfpMlopsError):
    """A request does not match the model's feature schema (KServe answers HTTP 400)."""

    def __init__(self, message: str, reason: str, field: str | None = None):
        super().__init__(message)
        self.reason_code = reason
        self.field = field


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


_EXPECTS = {
    NUMERIC: "a number",
    CATEGORICAL: "a string",
    BOOLEAN: "true or false",
}


def coerce_column(feature: Feature, values: Sequence[Any], where: Callable[[int], str]) -> Any:
    """Check one column's raw values against ``feature``; return a typed numpy array.

    ``where(i)`` names the position of value ``i`` in the request, for error messages.
    Missing values (``null``/NaN) become ``np.nan`` so the model's imputers see them.
    """
    family = _FAMILIES.get(feature.dtype) or dtype_family(feature.dtype)
    found = _json_column(family, values)
    if found is not None and (feature.nullable or not found[1]):
        out, nulls = found
    else:  # something to refuse, or values that are not plain JSON types: value by value
        out, nulls = _checked_column(feature, family, values, where)
    if not nulls:
        # Give the model the dtype it was trained on where that is lossless.
        if family == NUMERIC and feature.dtype.lower().startswith(("int", "uint")):
            if np.all(np.floor(out) == out) and np.all(np.abs(out) < 2.0**63):
                return out.astype(feature.dtype.lower())
        elif family == BOOLEAN and out.dtype != bool:
            return out.astype(bool)
    return out


# dtype name -> family, for the dtypes a model folder usually holds (the rest are looked up).
_FAMILIES = {
    name: dtype_family(name)
    for name in ("float64", "float32", "int64", "int32", "object", "str", "string", "bool")
}
_NUMBER_TYPES = frozenset((float, int, type(None)))
_TEXT_TYPES = frozenset((str,))
_BOOL_TYPES = frozenset((bool,))


def _json_column(family: str, values: Sequence[Any]) -> tuple[Any, int] | None:
    """The typed array and null count of a column of plain JSON values, in one pass.

    The common request (numbers, ``null`` or strings as ``orjson`` parses them) is
    converted by numpy at once. None when a value is not of the column's JSON type, or
    a number is out of float range: :func:`_checked_column` then finds the value and
    names it. Same result as that path for every column it accepts.
    """
    # The set of the values' exact types, built in C: type() rather than isinstance, so
    # bool (an int subclass) is not a number here.
    types = set(map(type, values))
    if family == NUMERIC:
        if not types <= _NUMBER_TYPES:
            return None
        try:
            out = np.array(values, dtype=np.float64)  # None -> NaN
        except OverflowError:  # an integer beyond float range
            return None
        if np.isfinite(out).all():  # the common column: no null, NaN or infinity
            return out, 0
        if np.isinf(out).any():
            return None
        return out, int(np.isnan(out).sum())
    if family == CATEGORICAL:
        if not types <= _TEXT_TYPES:
            return None
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out, 0
    if not types <= _BOOL_TYPES:
        return None
    return np.array(values, dtype=bool), 0


def _checked_column(
    feature: Feature, family: str, values: Sequence[Any], where: Callable[[int], str]
) -> tuple[Any, int]:
    """Check and convert ``values`` one by one, raising on the first one refused."""
    n = len(values)
    nulls = 0
    if family == NUMERIC:
        out = np.empty(n, dtype=np.float64)
        for i, value in enumerate(values):
            if _is_null(value):
                out[i] = np.nan
                nulls += 1
            elif _is_number(value):
                try:
                    out[i] = value
                except OverflowError:  # a JSON integer beyond float range
                    out[i] = math.inf
                if math.isinf(out[i]):
                    raise InputSchemaError(
                        f"feature '{feature.name}' got an infinite or out-of-range value at "
                        f"{where(i)}; send a finite number or null",
                        "wrong_type",
                        feature.name,
                    )
            else:
                _raise_type(feature, family, value, where(i))
    else:
        out = np.empty(n, dtype=object)
        check = (
            (lambda v: isinstance(v, str))
            if family == CATEGORICAL
            else (lambda v: isinstance(v, (bool, np.bool_)))
        )
        for i, value in enumerate(values):
            if _is_null(value):
                out[i] = np.nan
                nulls += 1
            elif check(value):
                out[i] = value
            else:
                _raise_type(feature, family, value, where(i))
    if nulls and not feature.nullable:
        first = next(i for i, v in enumerate(values) if _is_null(v))
        raise InputSchemaError(
            f"feature '{feature.name}' is not nullable but {where(first)} is null/NaN "
            f"({nulls} of {n} rows); send a value for '{feature.name}'",
            "null_value",
            feature.name,
        )
    return out, nulls


def _raise_type(feature: Feature, family: str, value: Any, where: str) -> None:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise InputSchemaError(
        f"feature '{feature.name}' expects {_EXPECTS[family]} ({feature.dtype}) but {where} "
        f"is {type(value).__name__} {shown}; send {_EXPECTS[family]} or null",
        "wrong_type",
        feature.name,
    )


def frame_from_columns(
    features: Sequence[Feature],
    columns: Mapping[str, Sequence[Any]],
    where: Callable[[str, int], str],
) -> pd.DataFrame:
    """Build the model's input frame from one value list per feature, checking each."""
    data = {f.name: coerce_column(f, columns[f.name], _locator(where, f.name)) for f in features}
    # The dict is in feature order already; columns= would make pandas reindex it (about
    # 0.4 ms a request, more than the model's input checks all together). Not
    # copy=False: that saves 0.08 ms but leaves one block per column, which the
    # estimators' column selection then pays for again.
    return pd.DataFrame(data)


def _locator(where: Callable[[str, int], str], name: str) -> Callable[[int], str]:
    return lambda i: where(name, i)


def _strict(features: Sequence[Feature]) -> InputContract:
    return InputContract(tuple(f.name for f in features), frozenset())


def frame_from_v1(
    features: Sequence[Feature], payload: Any, contract: InputContract | None = None
) -> tuple[pd.DataFrame, bool]:
    """Parse a V1 body into the model's input frame and the return-probabilities flag.

    Records are checked against ``contract`` (default: the features and nothing else).
    """
    names = [f.name for f in features]
    if not isinstance(payload, dict):
        raise InputSchemaError(
            'the V1 body must be a JSON object like {"instances": [...]}, '
            f"got a JSON {type(payload).__name__}",
            "malformed",
        )
    extra = [k for k in payload if k not in V1_FIELDS]
    if extra:
        raise InputSchemaError(
            f"unknown top-level field '{extra[0]}' in the V1 body; allowed: {list(V1_FIELDS)}",
            "extra_field",
            extra[0],
        )
    want_proba = payload.get("return_probabilities", False)
    if not isinstance(want_proba, bool):
        raise InputSchemaError(
            "'return_probabilities' must be true or false", "wrong_type", "return_probabilities"
        )
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances:
        raise InputSchemaError(
            "'instances' must be a non-empty list of rows (lists in feature order "
            f"{names}) or records (objects keyed by feature name)",
            "malformed",
            "instances",
        )
    if isinstance(instances[0], dict):
        columns = _columns_from_records(contract or _strict(features), instances)
    else:
        columns = _columns_from_rows(names, instances)
    frame = frame_from_columns(features, columns, lambda name, i: f"instances[{i}].{name}")
    return frame, want_proba


def _columns_from_rows(names: list[str], rows: list[Any]) -> dict[str, Sequence[Any]]:
    width = len(names)
    if all(type(row) is list and len(row) == width for row in rows):
        return dict(zip(names, zip(*rows, strict=True), strict=True))
    for i, row in enumerate(rows):  # find the first bad row and name it
        if not isinstance(row, list):
            raise InputSchemaError(
                f"instances[{i}] is a {type(row).__name__} but instances[0] is a list; "
                "send every row as a list in feature order (or every row as an object)",
                "malformed",
                f"instances[{i}]",
            )
        if len(row) != width:
            raise InputSchemaError(
                f"instances[{i}] has {len(row)} values but the model expects {width}, "
                f"in this order: {names}",
                "row_length",
                f"instances[{i}]",
            )
    # Row lengths were checked above, so both zips are exact.
    return dict(zip(names, zip(*rows, strict=True), strict=True))


def _columns_from_records(contract: InputContract, rows: list[Any]) -> dict[str, Sequence[Any]]:
    names = list(contract.features)
    expected = set(names)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputSchemaError(
                f"instances[{i}] is a {type(row).__name__} but instances[0] is an object; "
                "send every row as an object keyed by feature name",
                "malformed",
                f"instances[{i}]",
            )
        if row.keys() != expected:
            missing = contract.missing(row)
            if missing:
                raise InputSchemaError(
                    f"instances[{i}] is missing feature '{missing[0]}' "
                    f"(missing: {missing}); send every feature, null where unknown",
                    "missing_field",
                    missing[0],
                )
            extra = contract.unknown(row)
            if extra:
                raise InputSchemaError(
                    contract.unknown_message(extra[0], f"instances[{i}]"), "extra_field", extra[0]
                )
    return {n: [row[n] for row in rows] for n in names}


def _input_values(item: InferInput) -> list[Any]:
    """Flat Python list of a V2 input's values, from JSON data or binary data."""
    if item.data is None:  # binary tensor extension: the bytes are decoded by KServe
        try:
            values: list[Any] = item.as_numpy().ravel().tolist()
        except (ValueError, TypeError, InvalidInput) as exc:
            raise InputSchemaError(
                f"input '{item.name}' carries binary data that does not match its shape "
                f"{list(item.shape)} and datatype {item.datatype} ({exc})",
                "row_length",
                item.name,
            ) from exc
    else:
        values = list(item.data)
        if values and isinstance(values[0], list):
            values = [v for sub in values for v in (sub if isinstance(sub, list) else [sub])]
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]


def frame_from_v2(
    features: Sequence[Feature], request: InferRequest, contract: InputContract | None = None
) -> pd.DataFrame:
    """Parse a V2 inference request (per-column inputs or one row tensor) into a frame.

    Column inputs are checked against ``contract`` (default: the features only); the
    ones it ignores (target, dropped columns) are skipped unread.
    """
    contract = contract or _strict(features)
    names = [f.name for f in features]
    by_name = {f.name: f for f in features}
    inputs = list(request.inputs)
    if not inputs:
        raise InputSchemaError("the V2 request has no inputs", "malformed", "inputs")
    if (len(inputs) == 1 and inputs[0].name not in by_name and len(features) > 1
            and inputs[0].name not in contract.ignored):
        return _frame_from_v2_tensor(features, inputs[0])
    seen: set[str] = set()
    columns: dict[str, Sequence[Any]] = {}
    rows: int | None = None
    for item in inputs:
        if item.name not in by_name:
            if contract.unknown([item.name]):
                raise InputSchemaError(
                    contract.unknown_message(item.name, "the V2 request"),
                    "extra_field",
                    item.name,
                )
            continue  # the target, a dropped column, or unknown ones ignored on request
        if item.name in seen:
            raise InputSchemaError(f"input '{item.name}' appears twice", "malformed", item.name)
        seen.add(item.name)
        family = dtype_family(by_name[item.name].dtype)
        if item.datatype not in _V2_TYPES[family]:
            wanted = sorted(_V2_TYPES[family])[0] if family != NUMERIC else "FP64 or INT64"
            raise InputSchemaError(
                f"input '{item.name}' has datatype {item.datatype} but feature "
                f"'{item.name}' is {by_name[item.name].dtype}; send datatype {wanted}",
                "wrong_type",
                item.name,
            )
        shape = list(item.shape)
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise InputSchemaError(
                f"input '{item.name}' has shape {shape}; a column input must have shape "
                "[rows] or [rows, 1]",
                "row_length",
                item.name,
            )
        values = _input_values(item)
        if len(values) != shape[0]:
            raise InputSchemaError(
                f"input '{item.name}' declares shape {shape} but carries {len(values)} "
                "values; make them agree",
                "row_length",
                item.name,
            )
        if rows is not None and shape[0] != rows:
            raise InputSchemaError(
                f"input '{item.name}' has {shape[0]} rows but '{inputs[0].name}' has {rows}; "
                "every column must have the same number of rows",
                "row_length",
                item.name,
            )
        rows = shape[0]
        columns[item.name] = values
    missing = [n for n in names if n not in seen]
    if missing:
        raise InputSchemaError(
            f"missing input for feature '{missing[0]}' (missing: {missing}); send one input "
            "per feature, with null where a value is unknown",
            "missing_field",
            missing[0],
        )
    return frame_from_columns(features, columns, lambda name, i: f"input '{name}' data[{i}]")


def _frame_from_v2_tensor(features: Sequence[Feature], item: InferInput) -> pd.DataFrame:
    names = [f.name for f in features]
    shape = list(item.shape)
    if len(shape) != 2 or shape[1] != len(names):
        raise InputSchemaError(
            f"input '{item.name}' is not a feature name, so it must be one [rows, "
            f"{len(names)}] tensor in feature order {names}, but its shape is {shape}; "
            'or send one input per feature with "parameters": {"content_type": "pd"}',
            "row_length",
            item.name,
        )
    values = _input_values(item)
    if len(values) != shape[0] * shape[1]:
        raise InputSchemaError(
            f"input '{item.name}' declares shape {shape} but carries {len(values)} values",
            "row_length",
            item.name,
        )
    width = shape[1]
    columns = {n: values[j::width] for j, n in enumerate(names)}
    return frame_from_columns(
        features, columns, lambda name, i: f"input '{item.name}' row {i} ({name})"
    )


def parse_json(body: bytes | bytearray | str) -> Any:
    """Parse a raw body (KServe hands it over as is when its content type is not JSON).

    orjson, like KServe's own JSON path: no NaN/Infinity literals, integers beyond 64
    bits become floats (inf past float range), nesting depth capped, so a hostile body
    is a 400 here, never an OverflowError or RecursionError (HTTP 500).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputSchemaError(
            f"request body is not valid JSON ({exc}); send a JSON object", "malformed"
        ) from exc

