"""The content hash of a table, fed batch by batch: same rows, same hash, any batching.

A dataset version's id is cut from this hash (see :mod:`kfp_mlops.data.versions`), so it
must not depend on how the rows were read: the CSV reader's block size, Parquet row
groups, or the pandas version. It is computed from Arrow data alone.

Each column feeds three running sha256 digests, each a concatenation of per-row
pieces, which is why batch boundaries cannot change them: validity (one byte a row),
values (fixed-width bytes a row; nulls as zero) and, for text and binary, value lengths
(8 bytes a row) beside the value bytes. The final hash covers a format tag, the row
count, each column's name and Arrow type in order, and the columns' digests. Dictionary
columns are hashed by their values, so re-encoding a file does not change its id.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from kfp_mlops.data import arrow_numpy

FORMAT = b"kfp-mlops-dataset-content-v2\n"


class _ColumnDigest:
    """The running digests of one column."""

    def __init__(self) -> None:
        self.validity = hashlib.sha256()
        self.values = hashlib.sha256()
        self.lengths = hashlib.sha256()

    def update(self, array: pa.Array) -> None:
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        valid = arrow_numpy.valid(array)
        self.validity.update(valid.view(np.uint8).tobytes())
        if pa.types.is_null(array.type):
            return
        if pa.types.is_decimal(array.type):
            array = array.cast(pa.string())
        if _is_binary_like(array.type):
            self._update_binary(array, valid)
            return
        if pa.types.is_temporal(array.type):
            array = array.cast(pa.int64() if array.type.bit_width == 64 else pa.int32())
        self.values.update(arrow_numpy.values(array).tobytes())  # nulls as zero

    def _update_binary(self, array: pa.Array, valid: np.ndarray) -> None:
        offset_type = np.int64 if _is_large(array.type) else np.int32
        _, offsets_buffer, data = array.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=offset_type,
                                count=array.offset + len(array) + 1)[array.offset:]
        lengths = np.diff(offsets).astype(np.int64)
        if array.null_count and lengths[~valid].any():
            # A null slot holding bytes (allowed, rare): hash the values without them.
            import pyarrow.compute as pc  # here: importing it costs drift's CLI 35-50 ms

            empty = "" if pa.types.is_string(array.type) or pa.types.is_large_string(
                array.type) else b""
            return self._update_binary(pc.fill_null(array, empty), valid)
        self.lengths.update(lengths.tobytes())
        if data is not None and offsets[-1] > offsets[0]:
            self.values.update(memoryview(data)[offsets[0]:offsets[-1]])

    def digest(self) -> bytes:
        return self.validity.digest() + self.values.digest() + self.lengths.digest()


def _is_binary_like(arrow_type: pa.DataType) -> bool:
    return (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
            or pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type))


def _is_large(arrow_type: pa.DataType) -> bool:
    return pa.types.is_large_string(arrow_type) or pa.types.is_large_binary(arrow_type)


class ContentHasher:
    """Feed a table's record batches in row order; :meth:`hexdigest` gives its hash."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self._columns = [_ColumnDigest() for _ in schema]

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Fold the next rows in; their columns must be the schema's, in its order."""
        if batch.schema.names != self.schema.names:
            raise ValueError(f"batch columns {batch.schema.names} are not the table's "
                             f"{self.schema.names}")
        for digest, column in zip(self._columns, batch.columns, strict=True):
            chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
            for chunk in chunks:
                digest.update(chunk)
        self.rows += batch.num_rows

    def hexdigest(self) -> str:
        """sha256 hex of the format tag, row count, column names and types, and columns."""
        total = hashlib.sha256(FORMAT)
        total.update(f"rows\t{self.rows}\n".encode())
        for field in self.schema:
            total.update(f"{field.name}\t{field.type}\n".encode())
        for digest in self._columns:
            total.update(digest.digest())
        return total.hexdigest()


def table_content_hash(table: pa.Table) -> str:
    """The content hash of a whole Arrow table."""
    hasher = ContentHasher(table.schema)
    hasher.update(table)
    return hasher.hexdigest()
