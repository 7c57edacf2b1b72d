"""Sharded Parquet datasets: a prefix of files listed into shards of bounded size.

A *sharded source* is a local folder, a glob, or an ``s3://bucket/prefix/`` holding Parquet
files, possibly hive-partitioned (``.../date=2026-11-01/part-0.parquet``). Listing reads
only the files' footers (one ranged read each on S3): their row counts, row groups and
column statistics. The row groups are then packed, in file order, into shards of at most
``shard_rows`` rows (a row group larger than that is a shard of its own), so a shard is
what one pod scans with bounded memory and a table with a thousand small files does not
become a thousand pods.

Hive partition keys (``key=value`` folders) become string columns after the files' own
columns, as ``pyarrow.dataset``'s hive partitioning reads them with string values. Every
file must hold the same columns with the same types; the first file that does not is
named in the error.

The plan also carries each numeric column's finite (min, max) over the whole source, so
every shard bins its histogram on the same edges and shard histograms add up to the
single scan's. They come from the footers; a column whose footers lack them (or hold an
``inf``) is read once here, that column alone.
"""

from __future__ import annotations

import base64
import fnmatch
import glob
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.kinds import NUMERIC_KINDS
from kfp_mlops.data.stats import column_kind, finite_values, parquet_bounds
from kfp_mlops.errors import DataError

DEFAULT_SHARD_ROWS = 5_000_000
PLAN_FORMAT = "kfp-mlops-shard-plan-v1"


class ShardError(DataError):
    """A sharded source cannot be listed or read; the message names the file and the fix."""


@dataclass(frozen=True)
class Piece:
    """A run of row groups of one file: ``[first, last)``."""

    path: str  # a local path, or a key of the source's S3 store
    first: int
    last: int
    rows: int
    partition: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Shard:
    """What one scan task reads: pieces in source order, ``first_row`` its global offset."""

    index: int
    first_row: int
    rows: int
    pieces: list[Piece]


@dataclass
class ShardPlan:
    """A sharded source listed: its schema, shards and the numeric columns' bounds."""

    source: str
    rows: int
    columns: list[tuple[str, str]]  # name, Arrow type (the files' columns, then partitions)
    partition_keys: list[str]
    shards: list[Shard]
    bounds: dict[str, tuple[float, float]]
    shard_rows: int = DEFAULT_SHARD_ROWS
    arrow_schema: str = ""  # base64 of the Arrow IPC schema of the batches

    @property
    def files(self) -> int:
        """How many files the shards read."""
        return len({p.path for s in self.shards for p in s.pieces})

    def schema(self) -> pa.Schema:
        """The Arrow schema a shard's batches have (text columns as Parquet stores them)."""
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.arrow_schema)))

    def to_json(self) -> str:
        """The plan as JSON (what the plan task hands the shard tasks)."""
        return json.dumps({"format": PLAN_FORMAT, **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ShardPlan:
        """Rebuild from :meth:`to_json`."""
        data = json.loads(text)
        if data.pop("format", None) != PLAN_FORMAT:
            raise ShardError(f"not a {PLAN_FORMAT} shard plan")
        shards = [Shard(s["index"], s["first_row"], s["rows"], [Piece(**p) for p in s["pieces"]])
                  for s in data.pop("shards")]
        return cls(shards=shards, columns=[tuple(c) for c in data.pop("columns")],
                   bounds={k: tuple(v) for k, v in data.pop("bounds").items()}, **data)


def is_sharded_source(source: str) -> bool:
    """Whether ``source`` names many Parquet files: a folder, a glob or an S3 prefix."""
    if source.startswith("s3://"):
        return source.endswith("/") or any(c in source for c in "*?[")
    return any(c in source for c in "*?[") or Path(source).expanduser().is_dir()


class _Files:
    """Where a sharded source's files are, and how to open one."""

    def __init__(self, source: str):
        self.source = source
        self.store = None
        if source.startswith("s3://"):
            from kfp_mlops.storage import open_store

            parsed = urlparse(source)
            self.store = open_store(f"s3://{parsed.netloc}")
            self.pattern = parsed.path.lstrip("/")
        else:
            self.pattern = str(Path(source).expanduser())

    def list(self) -> list[str]:
        pattern = self.pattern
        globbed = any(c in pattern for c in "*?[")
        base = self._base()
        if self.store is not None:
            keys = self.store.list(base)
            if globbed:
                names = [k for k in keys if fnmatch.fnmatch(k, pattern)]
            elif pattern.endswith("/"):
                names = keys
            else:  # one object, or a prefix given without its slash
                names = [k for k in keys if k == pattern or k.startswith(pattern + "/")]
        elif globbed:
            names = sorted(glob.glob(pattern, recursive=True))
        elif Path(pattern).is_file():
            names = [pattern]
        else:
            names = sorted(str(p) for p in Path(pattern).rglob("*") if p.is_file())
        # Spark and Hadoop leave _SUCCESS, .crc files and _temporary/ folders beside the
        # data: not data.
        return [n for n in names if n.endswith((".parquet", ".parq", ".pq"))
                and not any(part.startswith(("_", ".")) for part in self._relative(n))]

    def _base(self) -> str:
        """The pattern up to its first wildcard."""
        return re.split(r"[*?\[]", self.pattern, maxsplit=1)[0]

    def _relative(self, path: str) -> list[str]:
        """The folders and name of ``path`` below the base."""
        base = self._base()
        if path == base:  # one file given by name
            return []
        return path[len(base):].strip("/").split("/") if path.startswith(base) else [path]

    @contextmanager
    def open(self, path: str, read_dictionary: list[str] | None = None
             ) -> Iterator[pq.ParquetFile]:
        try:
            handle = self.store.open_file(path) if self.store is not None else open(path, "rb")
        except OSError as exc:
            raise ShardError(f"cannot open {self.shown(path)}: {exc}") from exc
        try:
            yield pq.ParquetFile(handle, pre_buffer=False, read_dictionary=read_dictionary)
        except (OSError, pa.ArrowInvalid) as exc:
            raise ShardError(f"cannot read {self.shown(path)} as Parquet: {exc}; remove it "
                             "from the prefix or rewrite it") from exc
        finally:
            handle.close()

    def shown(self, path: str) -> str:
        if self.store is not None:
            return f"s3://{urlparse(self.source).netloc}/{path}"
        return path

    def partition(self, path: str) -> dict[str, str]:
        """The ``key=value`` folders between the base and the file."""
        return dict(p.split("=", 1) for p in self._relative(path)[:-1] if "=" in p)


def plan_shards(source: str, *, shard_rows: int = DEFAULT_SHARD_ROWS) -> ShardPlan:
    """List ``source``'s Parquet files into shards of at most ``shard_rows`` rows."""
    if shard_rows < 1:
        raise ShardError(f"shard_rows is {shard_rows}; give a positive number of rows")
    files = _Files(source)
    names = files.list()
    if not names:
        raise ShardError(f"no Parquet files (*.parquet) under {source!r}; check the path or "
                         "prefix (a folder, a glob, or s3://bucket/prefix/)")
    schema, keys, pieces, bounds = None, None, [], {}
    for name in names:
        with files.open(name) as parquet:
            found, meta = parquet.schema_arrow, parquet.metadata
        partition = files.partition(name)
        if schema is None:
            schema, keys = found, list(partition)
            bounds = {k: [math.inf, -math.inf] for k in _numeric(schema)}
        _check_same(schema, keys, found, partition, files.shown(name), files.shown(names[0]))
        _widen(bounds, parquet_bounds(meta, found), meta)
        pieces.extend(_pieces(name, meta, shard_rows, partition))
    full = pa.schema([*schema, *(pa.field(k, pa.string()) for k in keys)])
    plan = ShardPlan(source=source, rows=sum(p.rows for p in pieces),
                     columns=[(f.name, str(f.type)) for f in full], partition_keys=keys,
                     shards=_pack(pieces, shard_rows), bounds={}, shard_rows=shard_rows,
                     arrow_schema=base64.b64encode(full.serialize().to_pybytes()).decode())
    plan.bounds = _finite_bounds(plan, files, bounds)
    return plan


def _numeric(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if column_kind(f.type) in NUMERIC_KINDS]


def _check_same(schema: pa.Schema, keys: list[str], found: pa.Schema,
                partition: dict[str, str], shown: str, first: str) -> None:
    if found.names != schema.names:
        raise ShardError(f"{shown} has columns {found.names}, but {first} has {schema.names}; "
                         "every file of a sharded dataset must hold the same columns in order")
    for mine, theirs in zip(found, schema, strict=True):
        if mine.type != theirs.type:
            raise ShardError(f"column {mine.name!r} is {mine.type} in {shown} but {theirs.type} "
                             f"in {first}; rewrite the file with one type for the column")
    if list(partition) != keys:
        raise ShardError(f"{shown} sits under partition keys {list(partition)}, but {first} "
                         f"under {keys}; keep one partition layout under the prefix")


def _widen(bounds: dict[str, list[float]], found: dict[str, tuple[float, float]],
           meta: pq.FileMetaData) -> None:
    """Fold one file's footer bounds in; a column without them is marked unknown (NaN)."""
    for name, bound in bounds.items():
        if name in found:
            bound[0], bound[1] = min(bound[0], found[name][0]), max(bound[1], found[name][1])
        elif meta.num_rows:
            bound[0] = bound[1] = math.nan


def _pieces(name: str, meta: pq.FileMetaData, shard_rows: int,
            partition: dict[str, str]) -> list[Piece]:
    """The file's row groups as pieces of at most ``shard_rows`` rows (whole groups)."""
    pieces, first, rows = [], 0, 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if rows and rows + n > shard_rows:
            pieces.append(Piece(name, first, g, rows, partition))
            first, rows = g, 0
        rows += n
    if meta.num_row_groups:
        pieces.append(Piece(name, first, meta.num_row_groups, rows, partition))
    return pieces


def _pack(pieces: list[Piece], shard_rows: int) -> list[Shard]:
    """Consecutive pieces into shards of at most ``shard_rows`` rows."""
    shards: list[Shard] = []
    current: list[Piece] = []
    first_row = rows = 0
    for piece in pieces:
        if current and rows + piece.rows > shard_rows:
            shards.append(Shard(len(shards), first_row, rows, current))
            first_row, rows, current = first_row + rows, 0, []
        current.append(piece)
        rows += piece.rows
    if current:
        shards.append(Shard(len(shards), first_row, rows, current))
    return shards


def _finite_bounds(plan: ShardPlan, files: _Files,
                   bounds: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """Footer bounds where they are finite; the other columns read once, alone."""
    unknown = [k for k, (lo, hi) in bounds.items() if not (np.isfinite(lo) and np.isfinite(hi))]
    if unknown:
        for batch in iter_shard_batches(plan, None, unknown, files=files):
            for name, array in zip(batch.schema.names, batch.columns, strict=True):
                values = finite_values(array)
                if len(values):
                    lo, hi = bounds[name]
                    lo = float(values.min()) if np.isnan(lo) or lo > values.min() else lo
                    hi = float(values.max()) if np.isnan(hi) or hi < values.max() else hi
                    bounds[name] = [lo, hi]
    return {k: (float(lo), float(hi)) for k, (lo, hi) in bounds.items()
            if np.isfinite(lo) and np.isfinite(hi)}


def iter_shard_batches(
    plan: ShardPlan, shard: int | None, columns: list[str] | None = None, *,
    batch_rows: int = 65_536, files: _Files | None = None, row_groups: bool = False,
) -> Iterator[pa.RecordBatch]:
    """The record batches of one shard (``None``: every shard), in source order.

    Partition keys come as string columns after the files' own. With ``row_groups`` a
    ``None`` is yielded after each row group (content hashes are kept per row group).
    """
    files = files or _Files(plan.source)
    wanted = columns if columns is not None else [c for c, _ in plan.columns]
    own = [c for c in wanted if c not in plan.partition_keys]
    shards = plan.shards if shard is None else [plan.shards[shard]]
    # Text as dictionaries, as Parquet stores them (see stats._parquet_source).
    text = [c for c, t in plan.columns if t in ("string", "large_string")
            and c not in plan.partition_keys]
    for item in shards:
        for piece in item.pieces:
            with files.open(piece.path, read_dictionary=text) as parquet:
                for g in range(piece.first, piece.last):
                    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[g],
                                                     columns=own):
                        yield _with_partition(batch, wanted, piece.partition)
                    if row_groups:
                        yield None


def _with_partition(batch: pa.RecordBatch, wanted: list[str],
                    partition: dict[str, str]) -> pa.RecordBatch:
    if not partition:
        return batch
    arrays = []
    for name in wanted:
        if name in partition:
            arrays.append(pa.array([partition[name]] * batch.num_rows, pa.string()))
        else:
            arrays.append(batch.column(name))
    return pa.RecordBatch.from_arrays(arrays, names=wanted)


def describe(plan: ShardPlan) -> dict[str, Any]:
    """A short summary for logs and artifact metadata."""
    return {"source": plan.source, "rows": plan.rows, "files": plan.files,
            "shards": len(plan.shards), "shard_rows": plan.shard_rows}
