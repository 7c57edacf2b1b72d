"""The statistics' fast paths give exactly what the plain numpy / pyarrow calls give.

The histogram counts without sorting and the category counts come from the dictionary
codes (kfp_mlops.data.stats); both must agree with ``np.histogram`` and
``pc.value_counts`` to the count and to the order, or a report or a golden would change.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlops.data.kinds import INTEGER
from kfp_mlops.data.stats import (
    COUNT_BELOW_BINS,
    Accumulator,
    Histogram,
    _update,
    compute_statistics,
    histogram_edges,
    scan_parquet,
)


def _cases(rng: np.random.Generator, bins: int):
    for trial in range(600):
        n = int(rng.integers(1, 3000))
        kind = trial % 5
        if kind == 0:
            x = rng.normal(0, 1, n)
        elif kind == 1:
            x = rng.integers(-5, 40, n).astype(float)
        elif kind == 2:
            x = rng.choice([0.1, 0.2, 0.3, 1e-300, 7.0], n)
        elif kind == 3:
            x = rng.standard_cauchy(n) * 1e10
        else:
            x = np.round(rng.uniform(0, 1, n), 2)
        lo, hi = float(x.min()), float(x.max())
        edges = histogram_edges(INTEGER if kind == 1 else "numeric", lo, hi, bins)
        # every edge, and the floats either side of it
        x = np.concatenate([x, edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
        yield x, edges
        # values outside the edges (wrong Parquet bounds): numpy ignores them
        yield x, histogram_edges("numeric", lo + (hi - lo) / 4, hi - (hi - lo) / 4, bins)


@pytest.mark.parametrize("bins", [20, COUNT_BELOW_BINS + 8])  # counted below edges; guessed
def test_histogram_counts_as_numpy(bins: int) -> None:
    for values, edges in _cases(np.random.default_rng(7), bins):
        hist = Histogram(edges)
        hist.add(values)
        hist.add(values[: len(values) // 2], float(values[: len(values) // 2].min()),
                 float(values[: len(values) // 2].max()))
        expected = np.histogram(values, edges)[0] + np.histogram(values[: len(values) // 2],
                                                                 edges)[0]
        assert np.array_equal(hist.counts, expected), edges


def _categories(rng: np.random.Generator, n: int) -> pa.Array:
    labels = np.array([f"v{i}" for i in range(40)], dtype=object)
    codes = rng.zipf(1.6, n) % 40  # a long tail: late first appearances
    return pa.array(labels[codes], type=pa.string(), mask=rng.random(n) < 0.1)


@pytest.mark.parametrize("cap", [3, 10, 10_000])
def test_dictionary_counts_as_value_counts(cap: int) -> None:
    rng = np.random.default_rng(3)
    plain, coded = Accumulator("categorical", "string"), Accumulator("categorical", "string")
    for _ in range(6):
        batch = _categories(rng, int(rng.integers(1, 500)))
        _update(plain, batch, None, cap)  # decoded strings: pc.value_counts
        _update(coded, batch.dictionary_encode(), None, cap)
        # a dictionary in another order, with entries the batch does not use
        words = [f"v{i}" for i in rng.permutation(40)] + ["unused"]
        where = {w: i for i, w in enumerate(words)}
        reordered = pa.DictionaryArray.from_arrays(
            pa.array([where[v] if v is not None else None for v in batch[::-1].to_pylist()],
                     type=pa.int32()),
            pa.array(words))
        _update(plain, batch[::-1], None, cap)
        _update(coded, reordered, None, cap)
    assert list(coded.counter.items()) == list(plain.counter.items())
    assert coded.counter.most_common() == plain.counter.most_common()
    assert (coded.capped, coded.count, coded.missing) == (plain.capped, plain.count, plain.missing)


def test_file_statistics_unchanged_by_dictionary_reading(tmp_path) -> None:
    """Categories read as dictionaries (row groups with their own dictionaries) count as
    strings do: every row group's dictionary starts anew and batches cut row groups."""
    rng = np.random.default_rng(5)
    table = pa.table({"c": _categories(rng, 5000), "x": rng.normal(0, 1, 5000)})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=700)
    coded = compute_statistics(path, batch_rows=300, category_cap=12).columns["c"]
    plain = Accumulator("categorical", "string")
    for batch in pq.ParquetFile(path).iter_batches(batch_size=300, columns=["c"]):
        _update(plain, batch.column(0), None, 12)
    assert coded.top_values == [(v, n) for v, n in plain.counter.most_common()]
    assert coded.distinct_capped == plain.capped


def test_sample_quantiles_for_drift(tmp_path) -> None:
    """``quantiles="sample"`` (drift's scans) takes the quantiles from the value sample."""
    rng = np.random.default_rng(9)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": rng.normal(0, 1, 30_000)}), path)
    sketched = scan_parquet(path, sample_size=5_000)
    sampled = scan_parquet(path, sample_size=5_000, quantiles="sample")
    assert sampled.stats.quantile_method.startswith("the value sample")
    got = sampled.stats.columns["x"].quantiles
    assert got == {k: float(v) for k, v in zip(
        got, np.quantile(sampled.samples["x"], [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]),
        strict=True)}
    # everything else is the sketch scan's
    a, b = sketched.stats.to_dict(), sampled.stats.to_dict()
    for d in (a, b):
        d.pop("quantile_method")
        for c in d["columns"]:
            c.pop("quantiles")
    assert a == b
    with pytest.raises(ValueError, match="quantiles"):
        scan_parquet(path, quantiles="exact")


@pytest.mark.parametrize("rate", [0.0, 1e-6, 0.1, 1 / 3, 0.5, 1 - 2**-53, 1.0])
def test_sample_mask_is_the_float_rule(rate: float) -> None:
    """The integer comparison keeps exactly the rows the float form of the rule keeps."""
    from kfp_mlops.data.stats import _mix, sample_mask

    index = np.arange(5_000, 105_000, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashed = _mix(index + np.uint64(3) * np.uint64(0x9E3779B97F4A7C15))
    expected = (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53 < rate
    assert np.array_equal(sample_mask(5_000, 100_000, rate, 3), expected)


def test_sorted_quantiles_are_numpys() -> None:
    from kfp_mlops.data.stats import QUANTILES, sorted_quantiles

    rng = np.random.default_rng(11)
    qs = [list(QUANTILES.values()), np.linspace(0, 1, 11), [0.0, 0.5, 1.0], rng.random(7)]
    for trial in range(400):
        n = int(rng.integers(1, 2000)) if trial % 4 else int(rng.integers(1, 6))
        kind = trial % 3
        values = (rng.normal(0, 10, n) if kind == 0 else rng.integers(-3, 4, n).astype(float)
                  if kind == 1 else rng.standard_cauchy(n) * 1e12)
        values.sort()
        for q in qs:
            assert np.array_equal(sorted_quantiles(values, q), np.quantile(values, q)), (n, q)
