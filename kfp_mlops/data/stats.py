"""Streaming dataset statistics over a Parquet file, read batch by batch with pyarrow.

Memory is bounded by the batch size, the histogram bins, the per-column quantile
sample and the capped category counters, never by the row count. Two passes are made:
the first gathers counts, moments, min/max, category counts and a sample; the second
fills fixed-bin histograms whose edges come from the first pass's min and max.

Quantiles (p01 ... p99) are exact while the table has at most ``sample_size`` rows;
above that they come from a KLL sketch (Apache DataSketches' ``kll_doubles_sketch``,
``k=1000``): its normalized rank error is at most 0.28 % with 99 % confidence, whatever
the row count, and two sketches merge into one with the same bound, which is what lets a
sharded scan (:mod:`kfp_mlops.data.shard_stats`) give the single scan's figures.

The value sample the drift tests use (about ``sample_size`` values a column) is a
Bernoulli sample *coordinated by row number*: row ``i`` is kept when a hash of
``(seed, i)`` falls under the rate. A shard that knows its first row's number therefore
keeps exactly the rows the single scan keeps, and the shards' samples put end to end are
the single scan's sample.

Mean and standard deviation are merged batch by batch with Chan's parallel formula, so
they match pandas to floating-point rounding. Distinct counts of categorical columns
are exact up to ``category_cap`` values; past it the counter stops taking new values,
``distinct_capped`` is set and the top values are those seen before the cap.

Duplicate rows are counted from a 64-bit hash per row (8 bytes a row in memory).

Infinite values (``inf``, ``-inf``) are counted per numeric column (``infinite``) and kept
out of every other figure: mean, std, min, max, quantiles, histograms and the drift
samples describe the finite values, so one ``inf`` cannot turn them into NaN. ``count``
still includes them (they are present, not missing); the validation gate refuses them.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data import arrow_numpy
from kfp_mlops.data.kinds import DATETIME, INTEGER, NUMERIC, NUMERIC_KINDS, arrow_kind
from kfp_mlops.errors import KfpMlopsError

if TYPE_CHECKING:  # pandas is imported where a frame is used: a file scan needs none
    import pandas as pd

QUANTILES: dict[str, float] = {
    "p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p95": 0.95, "p99": 0.99,
}
DEFAULT_BATCH_ROWS = 65_536
DEFAULT_SAMPLE_SIZE = 100_000
DEFAULT_CATEGORY_CAP = 10_000
DEFAULT_TOP_K = 1_000
DEFAULT_BINS = 20
KLL_K = 1000  # DataSketches KLL accuracy parameter: 0.28 % normalized rank error (99 %)


class StatisticsError(KfpMlopsError, ValueError):
    """The data cannot be profiled as given; the message names the column and the fix."""


@dataclass
class ColumnStatistics:
    """Figures for one column; fields that do not apply to its kind stay ``None``."""

    name: str
    kind: str  # numeric, integer, categorical, boolean, datetime
    arrow_type: str
    count: int  # non-missing values
    missing: int
    missing_share: float
    mean: float | None = None
    std: float | None = None  # sample standard deviation (ddof=1), as pandas
    min: float | str | None = None  # str for datetime columns (ISO 8601)
    max: float | str | None = None
    all_integral: bool | None = None  # every value is a whole number (ints read as floats)
    quantiles: dict[str, float] | None = None
    histogram: dict[str, list[float]] | None = None  # {"edges": [...], "counts": [...]}
    distinct: int | None = None
    distinct_capped: bool | None = None
    top_values: list[tuple[str, int]] | None = None  # most frequent first
    # Numeric columns: how many values are +inf or -inf (in ``count``, in no other figure).
    infinite: int | None = None

    def category_counts(self) -> dict[str, int]:
        """Return the counts of the recorded categories (all of them unless capped)."""
        return dict(self.top_values or [])


@dataclass
class DatasetStatistics:
    """Per-column statistics of one dataset, with a JSON-ready round trip."""

    rows: int
    columns: dict[str, ColumnStatistics]
    duplicate_rows: int | None = None
    sample_size: int = DEFAULT_SAMPLE_SIZE
    quantile_method: str = "exact up to sample_size rows, else a KLL sketch"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duplicate_share(self) -> float | None:
        """Share of rows that repeat an earlier row (``None`` if not counted)."""
        if self.duplicate_rows is None:
            return None
        return self.duplicate_rows / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (lists instead of tuples)."""
        out = asdict(self)
        out["columns"] = [asdict(c) for c in self.columns.values()]
        for col in out["columns"]:
            if col["top_values"] is not None:
                col["top_values"] = [[v, n] for v, n in col["top_values"]]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetStatistics:
        """Rebuild from :meth:`to_dict` output."""
        data = dict(data)
        columns = {}
        for raw in data.pop("columns"):
            col = ColumnStatistics(**raw)
            if col.top_values is not None:
                col.top_values = [(str(v), int(n)) for v, n in col.top_values]
            columns[col.name] = col
        return cls(columns=columns, **data)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> DatasetStatistics:
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


def column_kind(arrow_type: pa.DataType) -> str:
    """Map an Arrow type to the suite's column kind (:mod:`kfp_mlops.data.kinds`)."""
    kind = arrow_kind(arrow_type)
    if kind is not None:
        return kind
    raise StatisticsError(
        f"unsupported column type {arrow_type}; convert it to a number, string, bool or "
        "timestamp before profiling"
    )


BatchSource = Callable[[list[str]], Iterable[pa.RecordBatch]]


@dataclass
class Accumulator:
    """Running figures for one column during the first pass."""

    kind: str
    arrow_type: str
    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: Any = None
    max: Any = None
    all_integral: bool = True
    infinite: int = 0
    sample: list[np.ndarray] = field(default_factory=list)
    counter: Counter[str] = field(default_factory=Counter)
    capped: bool = False
    histogram: Histogram | None = None  # filled in the first pass when bounds are known
    sketch: Any = None  # KLL sketch of the finite values, when the table is sampled


COUNT_BELOW_BINS = 32  # above this, one comparison pass per edge costs more than the guess


class Histogram:
    """Counts of finite values in fixed bins, as ``np.histogram(values, bins=edges)``.

    Bins are half-open ``[a, b)`` but the last, which is closed, as numpy's. Counted
    without sorting the batch (numpy's explicit-edges path sorts it). Up to
    ``COUNT_BELOW_BINS`` bins, with every value inside the edges, a bin's count is how
    many values lie below its upper edge less how many lie below its lower one: one
    comparison pass per inner edge and no indexing, 0.22-0.29 ms a batch of 65,536
    values at 20 bins against 0.9-1.0 ms for the guess below. With more bins each value's
    bin is guessed from the even spacing of the edges, then moved by one where it falls
    outside its bin's true edges (rounding near an edge); a batch the guess cannot settle
    in three rounds goes to ``np.histogram``. Either way the counts are numpy's exactly.
    """

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = edges
        self.counts = np.zeros(len(edges) - 1, dtype=np.int64)
        self._lower = edges[:-1].copy()
        self._upper = edges[1:].copy()
        self._upper[-1] = np.inf  # the last bin is closed: its top edge moves nothing up
        self._inner = [float(e) for e in edges[1:-1]]
        with np.errstate(all="ignore"):
            self._scale = float(len(self.counts) / (edges[-1] - edges[0]))

    def add(self, values: np.ndarray, lo: float | None = None, hi: float | None = None) -> None:
        """Count finite values into the bins (``lo``, ``hi``: their min and max, if known)."""
        if not len(values):
            return
        edges, bins = self.edges, len(self.counts)
        if lo is None or hi is None:
            lo, hi = float(values.min()), float(values.max())
        if not (lo >= edges[0] and hi <= edges[-1] and np.isfinite(self._scale)
                and self._scale > 0):
            self.counts += np.histogram(values, bins=edges)[0]
            return
        if bins <= COUNT_BELOW_BINS:
            below = [np.count_nonzero(values < edge) for edge in self._inner]
            self.counts += np.diff(np.array([0, *below, len(values)], dtype=np.int64))
            return
        with np.errstate(all="ignore"):
            index = ((values - edges[0]) * self._scale).astype(np.intp)
        np.minimum(index, bins - 1, out=index)
        for _ in range(3):
            down = values < self._lower[index]
            up = values >= self._upper[index]
            any_down, any_up = bool(down.any()), bool(up.any())
            if not (any_down or any_up):
                self.counts += np.bincount(index, minlength=bins)
                return
            if any_down:
                index -= down
            if any_up:
                index += up
        self.counts += np.histogram(values, bins=edges)[0]


def sorted_quantiles(ordered: np.ndarray, q: list[float] | np.ndarray) -> np.ndarray:
    """``np.quantile(ordered, q)`` of an ascending array with no NaN: the same numbers.

    numpy's default ("linear") rule read straight off the sorted values, its arithmetic
    step for step (index ``(n - 1) q``, interpolation from the lower neighbour below a
    fraction of 0.5 and from the upper one above; tests/data/test_stats_fast_paths.py
    compares the two). np.quantile would partition the array again and import numpy.ma
    (15 ms of start-up) on first use.
    """
    q = np.asarray(q, dtype=np.float64)
    n = len(ordered)
    virtual = (n - 1) * q
    below = np.floor(virtual)
    above = below + 1
    at_top = virtual >= n - 1
    below[at_top] = above[at_top] = -1
    lower = ordered[below.astype(np.intp)]
    upper = ordered[above.astype(np.intp)]
    gamma = virtual - below
    step = upper - lower
    result = lower + step * gamma
    np.subtract(upper, step * (1 - gamma), out=result, where=gamma >= 0.5)
    return result


def histogram_edges(kind: str, lo: float, hi: float, bins: int) -> np.ndarray:
    """Bin edges of a numeric column's histogram between its finite min and max."""
    if kind == INTEGER:
        # Whole-number bins centred on the integers: no aliasing stripes.
        width = max(1, int(np.ceil((hi - lo + 1) / bins)))
        count = int(np.ceil((hi - lo + 1) / width))
        return lo - 0.5 + width * np.arange(count + 1, dtype=np.float64)
    if lo == hi:  # a constant column still gets one honest bin
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


@dataclass
class Scan:
    """Result of a scan: the statistics plus per-column value samples (for drift tests)."""

    stats: DatasetStatistics
    samples: dict[str, np.ndarray]


def _present_values(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """The non-missing values as floats, ``inf`` included, and which rows hold them.

    The mask is None when every row holds a value.
    """
    values = arrow_numpy.values(array, zero_nulls=False).astype(np.float64, copy=False)
    present = ~np.isnan(values)  # a NaN stored in the file is as missing as a null
    if array.null_count:
        present &= arrow_numpy.valid(array)
    if present.all():
        return values, None
    return values[present], present


def finite_values(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The finite values: what every figure but ``infinite`` describes."""
    values, _ = _present_values(array)
    return values[np.isfinite(values)]


def _string_values(array: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return pc.drop_null(array.cast(pa.string()))


def _update(acc: Accumulator, array: pa.Array, keep: np.ndarray | None, cap: int,
            keep_rows: np.ndarray | None = None) -> None:
    """Fold one batch of one column into its accumulator.

    ``keep``: the value sample's rows of the batch; ``keep_rows``, optionally, the same as
    positions (``np.flatnonzero(keep)``, computed once a batch for every column).
    """
    rows = len(array)
    if acc.kind in NUMERIC_KINDS:
        present, holds_value = _present_values(array)
        finite = np.isfinite(present)
        all_finite = bool(finite.all())
        values = present if all_finite else present[finite]
        if keep is not None:
            if holds_value is None and all_finite and keep_rows is not None:
                chosen = present.take(keep_rows)  # every row holds a value: no mask pass
            else:
                if holds_value is not None:  # nulls or NaNs: the sampled rows holding values
                    keep = keep[holds_value]
                chosen = present[keep if all_finite else keep & finite]
            if len(chosen):
                acc.sample.append(chosen)
        n = len(values)
        if acc.sketch is not None and n:
            acc.sketch.update(values)
        acc.missing += rows - len(present)
        acc.infinite += len(present) - n
        if n == 0:
            return
        # Chan et al.: merge (count, mean, M2) of the batch into the running figures.
        b_mean = float(values.mean())
        deviations = values - b_mean
        b_m2 = float(np.square(deviations, out=deviations).sum())
        total = acc.count + n
        delta = b_mean - acc.mean
        acc.mean += delta * n / total
        acc.m2 += b_m2 + delta * delta * acc.count * n / total
        acc.count = total
        lo, hi = float(values.min()), float(values.max())
        acc.min = lo if acc.min is None else min(acc.min, lo)
        acc.max = hi if acc.max is None else max(acc.max, hi)
        if acc.all_integral and acc.kind == NUMERIC:
            acc.all_integral = bool(np.all(np.mod(values, 1.0) == 0.0))
        if acc.histogram is not None:
            acc.histogram.add(values, lo, hi)
        return
    if acc.kind == DATETIME:
        import pyarrow.compute as pc  # here: numbers and dictionaries never need it (0.1 s)

        n = rows - array.null_count
        acc.missing += rows - n
        acc.count += n
        if n:
            bounds = pc.min_max(array)
            lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
            acc.min = lo if acc.min is None else min(acc.min, lo)
            acc.max = hi if acc.max is None else max(acc.max, hi)
        return
    if _is_text_dictionary(array.type):
        acc.missing += array.null_count
        acc.count += rows - array.null_count
        values, ns = _dictionary_counts(array, acc.counter)
    else:
        import pyarrow.compute as pc

        strings = _string_values(array)
        acc.missing += rows - len(strings)
        acc.count += len(strings)
        if not len(strings):
            return
        counts = pc.value_counts(strings)
        values = counts.field("values").to_pylist()
        ns = counts.field("counts").to_pylist()
    for value, n in zip(values, ns, strict=True):
        if value is None:
            continue
        if value in acc.counter or len(acc.counter) < cap:
            acc.counter[value] += n
        else:
            acc.capped = True


def _dictionary_counts(array: pa.DictionaryArray, known: Counter[str]) -> tuple[list, list[int]]:
    """The values of a dictionary-encoded text batch and their counts, as ``pc.value_counts``.

    Counted with ``np.bincount`` on the codes (no decoding of every row, 3-5x faster than
    ``value_counts``); only the dictionary entries present are turned into Python
    strings. ``value_counts`` lists values in order of first appearance, which decides
    which values a capped counter keeps and how ties rank: where more than one value is
    new to ``known``, the values are put in that order too.
    """
    codes = arrow_numpy.values(array.indices)  # a missing value reads as code 0
    counts = np.bincount(codes, minlength=len(array.dictionary))
    if array.null_count:
        counts[0] -= array.null_count
    present = np.flatnonzero(counts)
    if len(array.dictionary) <= 4 * len(present):  # no take: it imports pyarrow.compute
        every = array.dictionary.to_pylist()
        values = [every[i] for i in present.tolist()]
    else:
        values = array.dictionary.take(arrow_numpy.positions(present)).to_pylist()
    if sum(1 for v in values if v is not None and v not in known) > 1:
        valid = codes if not array.null_count else codes[arrow_numpy.valid(array)]
        # Where each code first appears (np.unique's return_index, 20x faster: no sort).
        first = np.full(len(array.dictionary), len(valid), dtype=np.intp)
        np.minimum.at(first, valid, np.arange(len(valid)))
        order = np.argsort(first[present], kind="stable")
        present = present[order]
        values = [values[i] for i in order]
    return values, counts[present].tolist()


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _is_text_dictionary(arrow_type: pa.DataType) -> bool:
    return pa.types.is_dictionary(arrow_type) and _is_text(arrow_type.value_type)


_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 values (wrapping arithmetic): spreads every bit."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def _text_hashes(values: list) -> np.ndarray:
    import hashlib

    return np.array([int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little")
                     for v in values], dtype=np.uint64)


def _column_hashes(array: pa.Array) -> np.ndarray:
    """A 64-bit hash per row of one column; equal values hash equal, missing ones alike."""
    import pyarrow.compute as pc

    if _is_text_dictionary(array.type):
        # Hash the (few) dictionary values once and look the codes up.
        codes = arrow_numpy.values(array.indices)
        hashed = _text_hashes(array.dictionary.to_pylist())[codes] if len(array.dictionary) \
            else np.zeros(len(array), dtype=np.uint64)
    elif _is_text(array.type) or pa.types.is_dictionary(array.type):
        return _column_hashes(pc.dictionary_encode(array.cast(pa.string())))
    elif pa.types.is_null(array.type):
        return np.full(len(array), _NULL_HASH, dtype=np.uint64)
    else:
        if pa.types.is_temporal(array.type):
            array = array.cast(pa.int64() if array.type.bit_width == 64 else pa.int32())
        numbers = arrow_numpy.values(array)  # nulls as 0, replaced below
        if pa.types.is_floating(array.type):
            # -0.0 and 0.0 are the same value
            bits = (numbers.astype(np.float64, copy=False) + 0.0).view(np.uint64)
        else:  # integers (all 64 bits kept) and booleans
            bits = numbers.astype(np.int64, copy=False).view(np.uint64)
        hashed = _mix(bits)
    if array.null_count:
        hashed = np.where(arrow_numpy.valid(array), hashed, _NULL_HASH)
    return hashed


def _row_hashes(batch: pa.RecordBatch) -> np.ndarray:
    """A 64-bit hash per row from its columns' hashes, in column order (Arrow only)."""
    rows = np.zeros(batch.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in batch.columns:  # each column hash is mixed: order matters
            rows *= np.uint64(0x100000001B3)
            rows += _column_hashes(column)
    return _mix(rows)


def new_accumulators(
    schema: pa.Schema, *, bins: int, sampled: bool,
    bounds: dict[str, tuple[float, float]] | None = None,
) -> dict[str, Accumulator]:
    """One accumulator a column; histograms start in the first pass where bounds are known."""
    accs = {f.name: Accumulator(column_kind(f.type), str(f.type)) for f in schema}
    for name, (lo, hi) in (bounds or {}).items():
        if name in accs and accs[name].kind in NUMERIC_KINDS:
            accs[name].histogram = Histogram(histogram_edges(accs[name].kind, lo, hi, bins))
    if sampled:
        from datasketches import kll_doubles_sketch

        for acc in accs.values():
            if acc.kind in NUMERIC_KINDS:
                acc.sketch = kll_doubles_sketch(KLL_K)
    return accs


def sample_mask(first_row: int, rows: int, rate: float, seed: int) -> np.ndarray:
    """Which of rows ``first_row ...`` the value sample keeps: a hash of (seed, row) < rate.

    A function of the row number alone, so any split of the table keeps the same rows.
    """
    if rate >= 1.0:
        return np.ones(rows, dtype=bool)
    index = np.arange(first_row, first_row + rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashed = _mix(index + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15))
    # (hashed >> 11) * 2**-53 < rate, in integers: the top 53 bits below ceil(rate * 2**53)
    # (exact: both sides are whole numbers under 2**53), so the whole hash below that
    # times 2**11. No float conversion of every row.
    return hashed < np.uint64(math.ceil(rate * 2.0**53) << 11)


def first_pass(
    batches: Iterable[pa.RecordBatch], accs: dict[str, Accumulator], *,
    first_row: int, rate: float, seed: int, category_cap: int, count_duplicates: bool,
    on_batch: Callable[[pa.RecordBatch, np.ndarray | None], None] | None = None,
) -> tuple[int, list[np.ndarray]]:
    """Fold ``batches`` into ``accs``; return the row count and the row hashes.

    ``on_batch(batch, keep)`` sees each batch with the sample's mask (None: every row).
    """
    hashes: list[np.ndarray] = []
    rows = 0
    for batch in batches:
        keep = sample_mask(first_row + rows, batch.num_rows, rate, seed) if rate < 1.0 else None
        keep_rows = np.flatnonzero(keep) if keep is not None else None
        rows += batch.num_rows
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            acc = accs[name]
            col_keep = keep
            if keep is None and acc.kind in NUMERIC_KINDS:
                col_keep = np.ones(batch.num_rows, dtype=bool)
            _update(acc, array, col_keep, category_cap, keep_rows)
        if count_duplicates and batch.num_rows:
            hashes.append(_row_hashes(batch))
        if on_batch is not None:
            on_batch(batch, keep)
    return rows, hashes


def sample_rate(sample_size: int, total_rows: int) -> float:
    """The value sample's Bernoulli rate for a table of ``total_rows`` rows."""
    return min(1.0, sample_size / total_rows) if total_rows else 1.0


def count_duplicates_sorted(hashes: np.ndarray) -> int:
    """Rows whose hash repeats an earlier row's, from the sorted hashes."""
    return int(np.count_nonzero(hashes[1:] == hashes[:-1]))


def scan(
    source: BatchSource,
    schema: pa.Schema,
    num_rows: int,
    *,
    bins: int = DEFAULT_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    category_cap: int = DEFAULT_CATEGORY_CAP,
    top_k: int = DEFAULT_TOP_K,
    count_duplicates: bool = True,
    seed: int = 0,
    bounds: dict[str, tuple[float, float]] | None = None,
    quantiles: str = "sketch",
) -> Scan:
    """Profile a table given as a re-iterable source of record batches.

    ``source(columns)`` must yield the table's batches restricted to ``columns``. It is
    read once, plus once more for the numeric columns whose histogram bounds were not
    known: ``bounds`` maps a column to its finite (min, max) when the caller knows it
    (Parquet statistics); a bound that proves wrong only costs that second pass.

    ``quantiles``: "sketch" (the statistics' figures: exact up to ``sample_size`` rows,
    else the KLL sketch) or "sample" (from the value sample, as drift's scans take them:
    the sketch's update costs about 40 ns a value, most of a drift scan's time on large
    files, for quantiles drift does not test with).
    """
    if quantiles not in ("sketch", "sample"):
        raise StatisticsError(f"quantiles={quantiles!r} is unknown; use 'sketch' (the "
                              "statistics' KLL sketch) or 'sample' (the value sample)")
    rate = sample_rate(sample_size, num_rows)
    sketched = rate < 1.0 and quantiles == "sketch"
    accs = new_accumulators(schema, bins=bins, sampled=sketched, bounds=bounds)
    rows, hashes = first_pass(
        source(schema.names), accs, first_row=0, rate=rate, seed=seed,
        category_cap=category_cap, count_duplicates=count_duplicates,
    )
    duplicates = None
    if count_duplicates:
        all_hashes = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        del hashes
        all_hashes.sort()
        duplicates = count_duplicates_sorted(all_hashes)
        del all_hashes

    histograms = _histograms(source, accs, bins)
    return finish_scan(accs, rows, histograms, duplicates=duplicates, top_k=top_k,
                       sample_size=sample_size, sampled_quantiles=rate < 1.0 and not sketched)


def finish_scan(
    accs: dict[str, Accumulator], rows: int,
    histograms: dict[str, tuple[np.ndarray, np.ndarray]], *, duplicates: int | None,
    top_k: int, sample_size: int, sampled_quantiles: bool = False,
) -> Scan:
    """The statistics and samples from finished accumulators.

    ``sampled_quantiles``: the quantiles come from a value sample that is not every value
    (said so in ``quantile_method``).
    """
    columns: dict[str, ColumnStatistics] = {}
    samples: dict[str, np.ndarray] = {}
    for name, acc in accs.items():
        columns[name], sample = _finish(name, acc, rows, histograms.get(name), top_k)
        if sample is not None:
            samples[name] = sample
    sampled = any(acc.sketch is not None for acc in accs.values())
    method = f"KLL sketch (DataSketches, k={KLL_K}), rank error <= 0.28 %" if sampled else "exact"
    if sampled_quantiles:
        # Dvoretzky-Kiefer-Wolfowitz: every quantile of a uniform sample of m values is
        # within sqrt(ln(2 / 0.01) / 2m) in rank of the table's, with 99 % confidence.
        error = np.sqrt(np.log(200) / (2 * sample_size))
        method = (f"the value sample (about {sample_size} values a column), rank error "
                  f"<= {error:.2%}")
    stats = DatasetStatistics(
        rows=rows, columns=columns, duplicate_rows=duplicates, sample_size=sample_size,
        quantile_method=method,
    )
    return Scan(stats=stats, samples=samples)


def _histograms(
    source: BatchSource, accs: dict[str, Accumulator], bins: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed-bin histograms between each numeric column's finite min and max.

    Columns whose bounds were known before the first pass (Parquet statistics) and
    proved right were counted in it; the others take a second pass over their values.
    """
    done, todo = {}, {}
    for name, acc in accs.items():
        if acc.kind not in NUMERIC_KINDS or not acc.count:
            continue
        edges = histogram_edges(acc.kind, acc.min, acc.max, bins)
        early = acc.histogram
        if early is not None and np.array_equal(early.edges, edges):
            done[name] = (early.edges, early.counts)
        else:
            todo[name] = Histogram(edges)
    if todo:
        for batch in source(list(todo)):
            for name, array in zip(batch.schema.names, batch.columns, strict=True):
                todo[name].add(finite_values(array))
    done.update({name: (h.edges, h.counts) for name, h in todo.items()})
    return done


def _finish(
    name: str,
    acc: Accumulator,
    rows: int,
    histogram: tuple[np.ndarray, np.ndarray] | None,
    top_k: int,
) -> tuple[ColumnStatistics, np.ndarray | None]:
    col = ColumnStatistics(
        name=name,
        kind=acc.kind,
        arrow_type=acc.arrow_type,
        count=acc.count + acc.infinite,
        missing=acc.missing,
        missing_share=acc.missing / rows if rows else 0.0,
    )
    sample = None
    if acc.kind in NUMERIC_KINDS:
        sample = np.concatenate(acc.sample) if acc.sample else np.empty(0)
        col.all_integral = acc.all_integral if acc.count else None
        col.infinite = acc.infinite
        if acc.count:
            col.mean = acc.mean
            col.std = float(np.sqrt(acc.m2 / (acc.count - 1))) if acc.count > 1 else None
            col.min, col.max = acc.min, acc.max
        if acc.sketch is not None and not acc.sketch.is_empty():
            values = acc.sketch.get_quantiles(list(QUANTILES.values()))
            col.quantiles = {k: float(v) for k, v in zip(QUANTILES, values, strict=True)}
        elif len(sample):  # exact where the sample is every value (see quantile_method)
            # Sorted once here (in the scan's own process, when drift forks), the quantiles
            # are a lookup and drift's tests need not sort it again (see drift._Sorted).
            sample.sort()
            values = sorted_quantiles(sample, list(QUANTILES.values()))
            col.quantiles = {k: float(v) for k, v in zip(QUANTILES, values, strict=True)}
        if histogram is not None:
            col.histogram = {
                "edges": [float(e) for e in histogram[0]],
                "counts": [int(c) for c in histogram[1]],
            }
    elif acc.kind == DATETIME:
        col.min = acc.min.isoformat() if acc.min is not None else None
        col.max = acc.max.isoformat() if acc.max is not None else None
    else:
        col.distinct = len(acc.counter)
        col.distinct_capped = acc.capped
        col.top_values = [(str(v), int(n)) for v, n in acc.counter.most_common(top_k)]
    return col, sample


def parquet_bounds(metadata: pq.FileMetaData, schema: pa.Schema) -> dict[str, tuple[float, float]]:
    """Finite (min, max) of each number column from the row groups' statistics.

    A column is left out when a row group with values has no statistics, or a bound is
    not finite (an ``inf``; NaN is never in Parquet statistics).
    """
    leaves = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
    bounds = {}
    for column in schema:
        j = leaves.get(column.name)
        if j is None or not (pa.types.is_integer(column.type) or pa.types.is_float32(column.type)
                             or pa.types.is_float64(column.type)):
            continue
        lows, highs = [], []
        for g in range(metadata.num_row_groups):
            chunk = metadata.row_group(g).column(j)
            st = chunk.statistics
            if st is not None and st.has_min_max:
                lows.append(float(st.min))
                highs.append(float(st.max))
            elif st is None or not st.has_null_count or st.null_count < chunk.num_values:
                break  # values without statistics: bounds unknown
        else:
            if lows and np.isfinite(lows).all() and np.isfinite(highs).all():
                bounds[column.name] = (min(lows), max(highs))
    return bounds


def _parquet_source(
    path: str | Path | io.BytesIO, batch_rows: int, use_threads: bool = True
) -> tuple[BatchSource, pa.Schema, pq.FileMetaData]:
    try:
        meta_file = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise StatisticsError(f"cannot read {path} as Parquet: {exc}") from exc

    def source(columns: list[str]) -> Iterator[pa.RecordBatch]:
        # A fresh reader per pass. pre_buffer=False: with it pyarrow reads ahead across
        # row groups, and peak memory grows with the file (1.4 GB vs 0.2 GB on 10M rows).
        # Text columns come as dictionaries, as Parquet stores them: 2x faster to read
        # and count than decoded strings.
        if isinstance(path, io.BytesIO):
            path.seek(0)
        reader = pq.ParquetFile(path, pre_buffer=False, read_dictionary=text)
        yield from reader.iter_batches(batch_size=batch_rows, columns=columns,
                                       use_threads=use_threads)

    schema = meta_file.schema_arrow
    text = [f.name for f in schema if _is_text(f.type)]
    return source, schema, meta_file.metadata


def scan_parquet(
    path: str | Path, *, batch_rows: int = DEFAULT_BATCH_ROWS, use_threads: bool = True,
    **options: Any,
) -> Scan:
    """Scan a Parquet file (statistics and samples); see :func:`scan` for ``options``.

    ``use_threads=False`` decodes the columns one after the other (drift's scans): less
    of each row group held at once and no CPU on pyarrow's thread pool, for the same
    figures; at 1M rows it was no slower on this 2-core machine.
    """
    source, schema, metadata = _parquet_source(path, batch_rows, use_threads)
    options.setdefault("bounds", parquet_bounds(metadata, schema))
    return scan(source, schema, metadata.num_rows, **options)


def scan_frame(df: pd.DataFrame, *, batch_rows: int = DEFAULT_BATCH_ROWS, **options: Any) -> Scan:
    """Scan an in-memory DataFrame exactly as its Parquet file would be scanned."""
    table = frame_to_table(df)

    def source(columns: list[str]) -> Iterator[pa.RecordBatch]:
        yield from table.select(columns).to_batches(max_chunksize=batch_rows)

    return scan(source, table.schema, table.num_rows, **options)


def frame_to_table(df: pd.DataFrame) -> pa.Table:
    """Arrow table of ``df`` without its index; errors name the column to fix."""
    for name in df.columns:
        if not isinstance(name, str):
            raise StatisticsError(
                f"column name {name!r} is not a string; rename the columns to strings"
            )
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StatisticsError(
            f"cannot convert the table to Arrow: {exc}. A column mixes types; cast it to one "
            "type (for example df[col].astype(str)) first"
        ) from exc


def compute_statistics(path: str | Path, **options: Any) -> DatasetStatistics:
    """Statistics of a Parquet file, streamed by batches (memory bounded)."""
    return scan_parquet(path, **options).stats


def compute_statistics_from_frame(df: pd.DataFrame, **options: Any) -> DatasetStatistics:
    """Statistics of an in-memory DataFrame, computed the same way as for a file."""
    return scan_frame(df, **options).stats


def scan_any(data: pd.DataFrame | str | Path, **options: Any) -> Scan:
    """Scan a DataFrame or a Parquet path."""
    if isinstance(data, (str, Path, io.BytesIO)):
        return scan_parquet(data, **options)
    return scan_frame(data, **options)
