"""Column kinds: the one vocabulary of statistics, schemas, model features and serving.

The values are persisted (statistics JSON, schema YAML, ``metadata.json`` of a model
version), so they never change. Import-light: no pandas or pyarrow at import.

- A column's **kind** (statistics and schemas): ``numeric`` (floating point, decimal),
  ``integer``, ``categorical`` (text, dictionary-encoded, all-empty), ``boolean``,
  ``datetime``.
- A feature's kind (model metadata): ``numeric`` (scaled), ``categorical`` (one-hot) or
  ``datetime`` (calendar features; sent to the model as text).
- A value **family** (serving): numbers are one family, since an integer feature may
  arrive as floats; ``boolean`` and ``categorical`` (text) are the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

NUMERIC = "numeric"
INTEGER = "integer"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
DATETIME = "datetime"

KINDS = (NUMERIC, INTEGER, CATEGORICAL, BOOLEAN, DATETIME)
NUMERIC_KINDS = (NUMERIC, INTEGER)
CATEGORICAL_KINDS = (CATEGORICAL, BOOLEAN)
# How a model's preprocessing treats a feature: scaled, one-hot encoded, or turned into
# calendar features (year, month, day of week, hour).
FEATURE_KINDS = (NUMERIC, CATEGORICAL, DATETIME)


def arrow_kind(arrow_type: pa.DataType) -> str | None:
    """The kind of an Arrow column; None for a type the suite does not profile."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return CATEGORICAL
    if pa.types.is_boolean(arrow_type):
        return BOOLEAN
    if pa.types.is_integer(arrow_type):
        return INTEGER
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return NUMERIC
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return CATEGORICAL
    if pa.types.is_null(arrow_type):
        # An all-empty column: profiled as (empty) categories so validation can report it.
        return CATEGORICAL
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return DATETIME
    return None


def dtype_kind(dtype: str) -> str:
    """The kind of a pandas/numpy dtype name (``float64``, ``Int64``, ``object``, ``bool``).

    Anything that is not a number or a boolean is sent to a model as text: categorical.
    """
    name = dtype.lower()
    if name in ("bool", "boolean"):
        return BOOLEAN
    if name.startswith(("int", "uint")):
        return INTEGER
    if name.startswith("float"):
        return NUMERIC
    return CATEGORICAL


def family(kind: str) -> str:
    """The value family of a kind: ``numeric`` for both number kinds, else the kind."""
    return NUMERIC if kind in NUMERIC_KINDS else kind


def dtype_family(dtype: str) -> str:
    """The value family of a feature's dtype name: ``numeric``, ``boolean`` or ``categorical``."""
    return family(dtype_kind(dtype))
