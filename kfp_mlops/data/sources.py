"""Read a table from a local file, an ``s3://`` URI, or a bundled data set by name.

Every reader goes through one stream of Arrow record batches (:func:`stream_source`):
pyarrow's streaming CSV reader or a Parquet file's row groups. Ingest writes the stream
to Parquet batch by batch; :func:`load_table` collects it for the few callers that need
a whole DataFrame; both see the same column types.
"""

from __future__ import annotations

import importlib
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.bundled import BUNDLED
from kfp_mlops.data.log_columns import SOURCE_SCHEME
from kfp_mlops.errors import DataError

if TYPE_CHECKING:  # imported where a frame is built: streaming needs no pandas
    import pandas as pd

T = TypeVar("T")

# Sources that a package above data reads, by scheme: the module and its function
# ``(source, path)`` that writes the rows as one Parquet file. Named here and imported
# only when such a source is read (as fsspec names its protocols' implementations): the
# prediction log's windows are the live loop's (kfp_mlops/live), which asks the model
# registry for the target column, and data sits below both.
SCHEME_READERS = {SOURCE_SCHEME: ("kfp_mlops.live.labels", "window_to_parquet")}


def bundled_table(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame (features plus its target column)."""
    import pandas as pd

    if name == "penguins":
        from palmerpenguins import load_penguins

        return load_penguins()
    from sklearn import datasets

    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
        "diabetes": datasets.load_diabetes,
    }
    bunch = loaders[name](as_frame=True)
    frame = bunch.frame.copy()
    if name != "diabetes":
        # Class names read better than 0/1/2 in confusion matrices and predictions.
        frame["target"] = pd.Categorical.from_codes(frame["target"], bunch.target_names).astype(str)
    return frame


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file into pandas through pyarrow's own file reader.

    ``pandas.read_parquet`` hands pyarrow a Python file object; with pandas 2.3 and
    pyarrow 26 a process that exits right after such a read aborts now and then
    ("terminate called without an active exception", exit status 134: 5 of 40 runs
    here), which would fail a KFP task after its work is done. Reading by path does
    not (0 of 40), and gives the same frame.
    """
    return pq.read_table(path, columns=columns).to_pandas()


def read_head(path: str | Path, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of a Parquet file, reading only the row groups needed."""
    reader = pq.ParquetFile(path)
    batch = next(reader.iter_batches(batch_size=max(rows, 1)), None)
    table = reader.schema_arrow.empty_table() if batch is None else pa.Table.from_batches([batch])
    return table.to_pandas()


def load_table(source: str) -> pd.DataFrame:
    """Load ``source`` whole: a bundled name, a CSV/Parquet path, or an ``s3://`` URI of one.

    Read exactly as ingest reads it (same column types), for callers that need every row
    in memory; pipelines stream instead.
    """
    with local_source(source) as local:
        if local.bundled:
            return bundled_table(local.bundled)
        table = stream_source(local, lambda stream: pa.Table.from_batches(
            list(stream.batches), schema=stream.schema))
    if table.num_rows == 0:
        raise DataError(f"{source!r} has no rows; give a file with data")
    return table.to_pandas()


def refuse_unnamed_columns(names: list[str], shown: str) -> None:
    """Refuse empty (or blank) column names, naming each one's position (1-based).

    Pandas would call such a CSV column ``Unnamed: 4`` and it would silently become a
    feature of that name; a model whose input has no real name cannot be served or
    monitored by name either.
    """
    blank = [i for i, name in enumerate(names) if not name.strip()]
    if not blank:
        return

    def where(i: int) -> str:
        before = f"after {names[i - 1]!r}" if i > 0 and names[i - 1].strip() else ""
        after = f"before {names[i + 1]!r}" if i + 1 < len(names) and names[i + 1].strip() else ""
        return f"column {i + 1}" + (f" ({', '.join(p for p in (before, after) if p)})"
                                    if before or after else "")

    hint = ("; an unnamed first column is usually a DataFrame index written by "
            "to_csv(): write the file with index=False" if blank[0] == 0 else "")
    raise DataError(
        f"{shown!r} has {len(blank)} column(s) without a name in its header: "
        f"{'; '.join(where(i) for i in blank)} of {len(names)}. Name each column in the "
        f"header, or drop the column{hint}"
    )


def _refuse_bad_header(path: Path, shown: str, sep: str) -> None:
    """Refuse what pandas renames silently: repeated names (``name.1``), empty ones."""
    import csv
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle, delimiter=sep), [])
    repeated = sorted({name for name in header if name.strip() and header.count(name) > 1})
    if repeated:
        raise DataError(
            f"{shown!r} has the column name(s) {repeated} more than once; rename them so "
            "each column is unique"
        )
    refuse_unnamed_columns(header, shown)


# --- Streaming: the table as record batches, never whole in memory -----------------------

# pandas' default missing-value markers, so a CSV reads the same as with pd.read_csv.
PANDAS_NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]
# CSV bytes per batch (pyarrow's default). The streaming reader reads about 32 blocks
# ahead, so memory is about 40x this: 1 MiB blocks peaked at 37 MiB of Arrow memory on a
# 170 MB file, 4 MiB blocks at 146 MiB. Types are inferred from the first block; a
# later value that does not fit widens the column (see stream_source).
CSV_BLOCK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 100_000
_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+): invalid value '(.*)'",
    re.DOTALL,
)


class ColumnTypeTooNarrow(Exception):
    """A CSV column holds a value its inferred type cannot: read again with ``wider``."""

    def __init__(self, column: str, wider: pa.DataType) -> None:
        super().__init__(f"column {column!r} needs {wider}")
        self.column, self.wider = column, wider


@dataclass
class TableStream:
    """A table as its Arrow schema and an iterator of record batches in row order."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]


@dataclass(frozen=True)
class LocalSource:
    """A source ready to stream: a local file, or a bundled data set (small, in memory)."""

    shown: str  # as the user named it, for messages
    path: Path | None = None
    bundled: str | None = None


@contextmanager
def local_source(source: str) -> Iterator[LocalSource]:
    """``source`` as a local file (an ``s3://`` object is downloaded for the duration)."""
    if source in BUNDLED:
        yield LocalSource(shown=source, bundled=source)
        return
    reader = scheme_reader(source)
    if reader is not None:  # e.g. the prediction log's rows of a time window
        with tempfile.TemporaryDirectory(prefix="kfp-mlops-window-") as tmp:
            path = Path(tmp) / "window.parquet"
            reader(source, path)
            yield LocalSource(shown=source, path=path)
        return
    if source.startswith("s3://"):
        with _s3_download(source) as path:
            yield LocalSource(shown=source, path=path)
        return
    if "://" in source and not source.startswith("file://"):
        raise DataError(
            f"unsupported data source {source!r}: give a local CSV/Parquet path, an "
            f"s3://bucket/key URI, or a bundled data set ({', '.join(BUNDLED)})"
        )
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.exists():
        hint = (
            f"; bundled data sets are: {', '.join(BUNDLED)}"
            if "/" not in source and "." not in source else ""
        )
        raise DataError(f"data file {str(path)!r} does not exist{hint}")
    yield LocalSource(shown=source, path=path)


def scheme_reader(source: str) -> Callable[[str, Path], object] | None:
    """The reader of ``source``'s scheme when a package above data reads it, else None."""
    for scheme, (module, name) in SCHEME_READERS.items():
        if source.startswith(scheme):
            return getattr(importlib.import_module(module), name)
    return None


def stream_source(local: LocalSource, consume: Callable[[TableStream], T]) -> T:
    """``consume(stream)`` of ``local``'s rows; CSV columns that outgrow their type are widened.

    CSV types are inferred from the first block; a later ``1.5`` in an integer column or
    a word in a number column restarts the read (and ``consume``) with that column
    widened (integer -> float -> text), as pandas would have typed it from the whole file.
    """
    column_types: dict[str, pa.DataType] = {}
    while True:
        try:
            return consume(open_stream(local, column_types))
        except ColumnTypeTooNarrow as exc:
            if column_types.get(exc.column) == exc.wider:  # cannot happen; never loop
                raise DataError(f"cannot read column {exc.column!r} of {local.shown!r} as "
                                f"{exc.wider}") from None
            column_types[exc.column] = exc.wider


def open_stream(
    source: LocalSource, column_types: dict[str, pa.DataType] | None = None
) -> TableStream:
    """Stream ``source``'s rows; CSV columns in ``column_types`` are read as those types.

    A CSV column whose later rows do not fit the type inferred from the first block
    raises :class:`ColumnTypeTooNarrow` while iterating: read again with it widened.
    """
    if source.bundled:
        table = pa.Table.from_pandas(bundled_table(source.bundled), preserve_index=False)
        return TableStream(table.schema, iter(table.to_batches(PARQUET_BATCH_ROWS)))
    assert source.path is not None
    suffix = source.path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _parquet_stream(source.path, source.shown)
    if suffix in (".csv", ".txt", ".tsv", ".gz", ""):
        return _csv_stream(source.path, source.shown, "\t" if suffix == ".tsv" else ",",
                           column_types or {})
    raise DataError(f"cannot read {source.shown!r}: unknown file type {suffix!r}; use .csv or "
                    ".parquet")


def _parquet_stream(path: Path, shown: str) -> TableStream:
    try:
        reader = pq.ParquetFile(path, pre_buffer=False)
    except Exception as exc:  # pyarrow errors for corrupt Parquet files
        raise DataError(f"cannot read {shown!r}: {type(exc).__name__}: {exc}") from None
    schema = reader.schema_arrow
    # pandas writes a non-default index as a column; the table is the rest.
    index = {c for c in (schema.pandas_metadata or {}).get("index_columns", [])
             if isinstance(c, str)}
    names = [n for n in schema.names if n not in index]
    refuse_unnamed_columns(names, shown)
    schema = pa.schema([schema.field(n) for n in names])
    if reader.metadata.num_rows == 0:
        raise DataError(f"{shown!r} has no rows; give a file with data")

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=names):
                yield batch.replace_schema_metadata(None)
        except OSError as exc:
            raise DataError(f"cannot read {shown!r}: {type(exc).__name__}: {exc}") from None

    return TableStream(schema, batches())


def _csv_options(sep: str, column_types: dict[str, pa.DataType]):
    from pyarrow import csv

    return (
        csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        # Quoted values may hold line breaks, as pandas reads them.
        csv.ParseOptions(delimiter=sep, newlines_in_values=True),
        csv.ConvertOptions(null_values=PANDAS_NA_VALUES, strings_can_be_null=True,
                           quoted_strings_can_be_null=True, column_types=column_types,
                           timestamp_parsers=[]),
    )


def _csv_stream(
    path: Path, shown: str, sep: str, column_types: dict[str, pa.DataType]
) -> TableStream:
    from pyarrow import csv

    try:
        _refuse_bad_header(path, shown, sep)
    except UnicodeDecodeError:
        raise DataError(f"cannot parse {shown!r} as CSV: its header is not valid UTF-8 text. "
                        "Save the file as UTF-8 (or convert it to Parquet)") from None
    try:
        reader = csv.open_csv(path, *_csv_options(sep, column_types))
    except pa.ArrowInvalid as exc:
        raise _csv_error(exc, shown) from None
    schema = reader.schema
    # pandas reads dates and times as text and an empty column as float; so do we, so
    # the same file gives the same table whichever reader ingested it.
    retype = {f.name: pa.string() for f in schema if pa.types.is_temporal(f.type)}
    retype.update({f.name: pa.float64() for f in schema if pa.types.is_null(f.type)})
    if retype:
        reader.close()
        return _csv_stream(path, shown, sep, {**column_types, **retype})
    binary = [f.name for f in schema if pa.types.is_binary(f.type)]
    if binary:
        raise _encoding_error(shown, binary[0])

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise _widen_or_fail(exc, schema, shown) from None
            yield batch

    return TableStream(schema, batches())


def _widen_or_fail(exc: pa.ArrowInvalid, schema: pa.Schema, shown: str) -> Exception:
    match = _CONVERSION_ERROR.match(str(exc))
    if not match:
        return _csv_error(exc, shown)
    column = schema.names[int(match.group(1))]
    target, value = match.group(2), match.group(3)
    if target in ("string", "utf8", "binary"):
        return _encoding_error(shown, column)
    # An integer column meeting a number becomes float; anything else becomes text.
    integer = target.startswith(("int", "uint"))
    return ColumnTypeTooNarrow(column, pa.float64() if integer and _is_number(value)
                               else pa.string())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _encoding_error(shown: str, column: str) -> DataError:
    return DataError(
        f"cannot parse {shown!r} as CSV: column {column!r} is not valid UTF-8 text. Save the "
        "file as UTF-8 (or convert it to Parquet)"
    )


def _csv_error(exc: Exception, shown: str) -> DataError:
    text = str(exc).strip()
    if text.startswith("Empty CSV file"):
        return DataError(f"{shown!r} is empty: it has no header and no rows")
    return DataError(
        f"cannot parse {shown!r} as CSV: {text}. Check the delimiter (a comma is expected), "
        "quoting and encoding (UTF-8), or convert the file to Parquet"
    )


@contextmanager
def _s3_download(uri: str) -> Iterator[Path]:
    from kfp_mlops.storage import open_store

    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if not key:
        raise DataError(f"{uri!r} names a bucket, not a file; use s3://bucket/path/file.csv")
    store = open_store(f"s3://{parsed.netloc}")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(key).name
        store.download_file(key, local)
        yield local
