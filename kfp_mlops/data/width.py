"""How wide a data file is, read from its header alone, and what a wide one will cost.

A 100,000-column CSV runs every task of a training run for minutes (each reads,
profiles and validates every column, and the model trains on all of them) with no word
on the console; :func:`wide_file_warning` says so before the first task, from the CSV's
first line or the Parquet footer (cheap whatever the file's size).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

WIDE_COLUMNS = 1000  # past this many columns the CLI warns before running
_BYTES_PER_CELL = 8  # a float64 cell in memory; strings cost more


def column_count(source: str) -> tuple[int, int] | None:
    """``(columns, estimated rows)`` of a local CSV or Parquet file; None for anything else.

    Rows of a CSV are estimated from its size and its first data line.
    """
    path = Path(source)
    if "://" in source or not path.is_file():
        return None
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path)
        return meta.num_columns, meta.num_rows
    if suffix not in (".csv", ".txt", ".tsv"):
        return None
    with open(path, "rb") as handle:
        head = handle.readline(64 * 1024 * 1024)
        first = handle.readline(64 * 1024 * 1024)
    text = head.decode("utf-8", errors="replace")
    delimiter = "\t" if suffix == ".tsv" else ","
    try:
        columns = len(next(csv.reader(io.StringIO(text), delimiter=delimiter)))
    except (StopIteration, csv.Error):
        return None
    size = path.stat().st_size
    rows = max(0, (size - len(head)) // max(1, len(first))) if first else 0
    return columns, rows


def wide_file_warning(source: str, threshold: int = WIDE_COLUMNS) -> str | None:
    """A one-paragraph warning for a file with more than ``threshold`` columns, else None."""
    found = column_count(source)
    if found is None or found[0] <= threshold:
        return None
    columns, rows = found
    memory = columns * max(rows, 1) * _BYTES_PER_CELL
    return (
        f"{source} has {columns:,} columns (about {rows:,} rows). Every task of the run "
        "reads, profiles and validates each column and the model trains on all of them, so "
        f"expect minutes per task, not seconds, and at least {_human(memory)} of memory per "
        "copy of the data (several copies live at once while training). If most columns "
        "are not features, select the ones you need first (e.g. with pandas), then run on "
        "that file."
    )


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
