"""Arrow arrays as numpy arrays straight from their buffers.

``pyarrow.Array.to_numpy`` goes through pyarrow's pandas converter, and ``pa.scalar``
through its Python converter; both import pandas (about a second) the first time, in
every process. Ingest, statistics and drift only need the values of number and flag
columns, so they read the buffers themselves.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def values(array: pa.Array | pa.ChunkedArray, *, zero_nulls: bool = True) -> np.ndarray:
    """The values of a number, flag or time array; missing values read as 0 (False).

    Decimals come as floats, as numpy has no decimal type. ``zero_nulls=False`` leaves
    what the null slots hold (undefined) for a caller that drops them anyway: no copy.
    """
    if pa.types.is_decimal(array.type):
        array = array.cast(pa.float64())
    if isinstance(array, pa.ChunkedArray):
        parts = [values(chunk, zero_nulls=zero_nulls) for chunk in array.chunks]
        return np.concatenate(parts) if parts else np.empty(0, _dtype(array.type))
    data = array.buffers()[1]
    start, stop = array.offset, array.offset + len(array)
    if data is None:  # an empty or all-null array may have no value buffer
        return np.zeros(len(array), _dtype(array.type))
    if pa.types.is_boolean(array.type):
        raw = _bits(data, start, stop)
    else:
        raw = np.frombuffer(data, dtype=_dtype(array.type), count=stop)[start:]
    if array.null_count and zero_nulls:  # what a null slot holds is undefined: make it zero
        raw = np.where(valid(array), raw, np.zeros(1, raw.dtype))
    return raw


def valid(array: pa.Array) -> np.ndarray:
    """True where ``array`` holds a value (nulls False)."""
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    bitmap = array.buffers()[0]
    if bitmap is None:  # the null type: nothing is valid
        return np.zeros(len(array), dtype=bool)
    return _bits(bitmap, array.offset, array.offset + len(array))


def positions(rows: np.ndarray) -> pa.Array:
    """Row positions as an Arrow int64 array for ``take`` (``pa.array`` imports pandas)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])


def _bits(buffer: pa.Buffer, start: int, stop: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), count=stop,
                         bitorder="little")[start:].view(bool)  # 0 and 1 bytes: no copy


def _dtype(arrow_type: pa.DataType) -> np.dtype:
    if pa.types.is_boolean(arrow_type) or pa.types.is_null(arrow_type):
        return np.dtype(bool)
    return np.dtype(arrow_type.to_pandas_dtype())
