"""Ingest: stream a source into the pipeline's Parquet and publish it as a dataset version.

Rows move as Arrow record batches from the reader (pyarrow's streaming CSV reader, or a
Parquet file's row groups) to a Parquet writer, and through the content hash on the
way, so memory is bounded by a batch, not by the file. The file is written beside its
target and renamed, and published only when whole: nobody reads half of it.

A text column of numbers with a few placeholders (``?``, ``-``) is rewritten as numbers
with those cells missing, and said so (:mod:`kfp_mlops.data.placeholders`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.content_hash import ContentHasher
from kfp_mlops.data.log_columns import is_window_source, labelled_only
from kfp_mlops.data.parquet import ROW_GROUP_ROWS, parquet_writer
from kfp_mlops.data.placeholders import PlaceholderScan, convert_table
from kfp_mlops.data.sources import (
    BUNDLED,
    TableStream,
    local_source,
    open_stream,
    read_parquet,
    stream_source,
)
from kfp_mlops.data.stats import StatisticsError, column_kind
from kfp_mlops.data.versions import file_sha256, publish_dataset_file
from kfp_mlops.errors import DataError
from kfp_mlops.storage import open_store

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What was ingested: counts, content hash, and the dataset version in the store."""

    rows: int
    columns: int
    sha256: str
    source_uri: str
    dataset_version: str | None = None
    new_version: bool = False
    # Text columns read as numbers: column -> {placeholder value: cells made missing}.
    placeholders: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Written:
    schema: pa.Schema
    rows: int
    content_sha256: str
    placeholders: dict[str, dict[str, int]] = field(default_factory=dict)


def ingest_to_parquet(
    source: str, out_path: str | Path, store_uri: str | None = None
) -> IngestResult:
    """Stream ``source`` into ``out_path`` as Parquet (100k-row groups).

    With ``store_uri`` that same file is also published as a dataset version (written
    once, not twice).
    """
    if store_uri and is_window_source(source):
        # A published version of the prediction log holds the labelled rows only: the
        # dataset a model learns from. The monitoring batch (no store) keeps every row.
        source = labelled_only(source)
    uri = f"bundled:{source}" if source in BUNDLED else source
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        with local_source(source) as local:
            written = stream_source(local, lambda stream: _write(stream, tmp, local.shown))
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    digest = file_sha256(out_path)
    version, created = (None, False)
    if store_uri:
        version, created = publish_dataset_file(
            open_store(store_uri), out_path, uri, content_sha256=written.content_sha256,
            schema=written.schema, rows=written.rows, sha256=digest,
        )
    return IngestResult(
        rows=written.rows, columns=len(written.schema), sha256=digest, source_uri=uri,
        dataset_version=version.version_id if version else None, new_version=created,
        placeholders=written.placeholders,
    )


def parquet_as_is(source: str) -> Path | None:
    """``source`` itself when it is a local Parquet file to read as it is, else None.

    Readers that only scan (drift) need no copy of such a file; it gets the same checks
    as ingest. A file with a pandas index column is copied without it by ingest instead.
    """
    with local_source(source) as local:
        if local.path is None or local.path.suffix.lower() not in (".parquet", ".pq"):
            return None
        stream = open_stream(local)
        check_schema(stream.schema, local.shown)
        if stream.schema.names != pq.read_schema(local.path).names:
            return None
        return local.path


def _write(stream: TableStream, path: Path, shown: str) -> _Written:
    check_schema(stream.schema, shown)
    scan = PlaceholderScan(stream.schema)
    written = _write_batches(stream.schema, stream.batches, path, shown, scan)
    numeric = scan.numeric_columns()
    if not numeric:
        return written
    # Text columns of numbers with a few placeholders: rewrite the file with them as
    # float64 (one more pass over the written Parquet, by row group).
    for name, tokens in numeric.items():
        log.warning("column %r is read as numbers: %s read as missing", name,
                    ", ".join(f"{n} {token!r}" for token, n in tokens.items()))
    converted = path.with_name(path.name + ".numbers")
    try:
        source = pq.ParquetFile(path)
        schema = convert_table(source.schema_arrow.empty_table(), numeric).schema
        batches = (batch for group in range(source.num_row_groups)
                   for batch in convert_table(source.read_row_group(group), numeric)
                   .to_batches())
        rewritten = _write_batches(schema, batches, converted, shown, None)
        converted.replace(path)
    finally:
        converted.unlink(missing_ok=True)
    return dataclasses.replace(rewritten, placeholders=numeric)


def _write_batches(
    schema: pa.Schema, batches, path: Path, shown: str, scan: PlaceholderScan | None
) -> _Written:
    hasher = ContentHasher(schema)
    pending: pa.Table | None = None
    with parquet_writer(path, schema) as writer:
        for batch in batches:
            hasher.update(batch)
            if scan is not None:
                scan.update(batch)
            table = pa.Table.from_batches([batch], schema=schema)
            pending = table if pending is None else pa.concat_tables([pending, table])
            while pending.num_rows >= ROW_GROUP_ROWS:
                writer.write_table(pending.slice(0, ROW_GROUP_ROWS))
                pending = pending.slice(ROW_GROUP_ROWS)
        if pending is not None and pending.num_rows:
            writer.write_table(pending)
    if hasher.rows == 0:
        raise DataError(f"{shown!r} has no rows; give a file with data")
    return _Written(schema, hasher.rows, hasher.hexdigest())


def _nested_kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_struct(arrow_type) or pa.types.is_map(arrow_type):
        return "struct/map"
    if (pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
            or pa.types.is_fixed_size_list(arrow_type)):
        return "list"
    return None


def check_schema(schema: pa.Schema, source: str) -> None:
    """Refuse nested columns and types the suite cannot use, naming each, before writing.

    A model takes one number, category or flag per cell; a list or struct column holds
    several. Dropping such columns here would change the published dataset version
    behind the user's back, so ingest refuses and says how to fix them upstream.
    """
    nested = {f.name: kind for f in schema if (kind := _nested_kind(f.type))}
    if nested:
        listed = ", ".join(f"{name!r} ({kind})" for name, kind in nested.items())
        raise DataError(
            f"{source!r} has nested column(s) {listed}: every cell holds several values, and "
            "a model takes one number, category or flag per cell. Flatten them upstream "
            "(one column per struct field; a count, mean or first element of each list), "
            "or leave them out of the file"
        )
    bad = []
    for column in schema:
        try:
            column_kind(column.type)
        except StatisticsError:
            bad.append(f"{column.name!r} ({column.type})")
    if bad:
        raise DataError(
            f"{source!r} has column(s) of a type the suite cannot use: {', '.join(bad)}; "
            "convert each to a number, text, a boolean or a timestamp upstream, or leave "
            "it out of the file"
        )


def read_dataset(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a dataset artifact written by :func:`ingest_to_parquet` or a split."""
    return read_parquet(path, columns=columns)


def dataset_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet dataset, without reading its rows."""
    import pyarrow.parquet as pq

    return pq.read_schema(path).names
