"""Read a table from a local file, an ``s3://`` URI, or a bundled data set by name."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.bundled import BUNDLED
from kfp_mlops.errors import DataError


def bundled_table(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame (features plus its target column)."""
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
    """Load ``source``: a bundled name, a CSV/Parquet path, or an ``s3://`` URI of one."""
    if source in BUNDLED:
        return bundled_table(source)
    if source.startswith("s3://"):
        return _load_s3(source)
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
    return _read_file(path, shown=source)


def _read_file(path: Path, shown: str) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv", ".gz", ""):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise DataError(
                f"cannot read {shown!r}: unknown file type {suffix!r}; use .csv or .parquet"
            )
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown!r} is empty: it has no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot parse {shown!r} as CSV: {str(exc).strip()}. Check the delimiter (a comma "
            "is expected), quoting and encoding (UTF-8), or convert the file to Parquet"
        ) from None
    except DataError:
        raise
    except Exception as exc:  # pyarrow errors for corrupt Parquet files
        raise DataError(f"cannot read {shown!r}: {type(exc).__name__}: {exc}") from None
    if frame.empty:
        raise DataError(f"{shown!r} has no rows; give a file with data")
    if suffix in (".parquet", ".pq"):
        refuse_unnamed_columns([str(c) for c in frame.columns], shown)
    else:
        _refuse_bad_header(path, shown, "\t" if suffix == ".tsv" else ",")
    return frame


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


def _load_s3(uri: str) -> pd.DataFrame:
    from kfp_mlops.storage import S3Store

    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if not key:
        raise DataError(f"{uri!r} names a bucket, not a file; use s3://bucket/path/file.csv")
    store = S3Store(f"s3://{parsed.netloc}")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(key).name
        store.download_file(key, local)
        return _read_file(local, shown=uri)
