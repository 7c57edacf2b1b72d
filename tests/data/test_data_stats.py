import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlops.data.stats import (
    DatasetStatistics,
    StatisticsError,
    compute_statistics,
    compute_statistics_from_frame,
    scan_parquet,
)


@pytest.fixture
def multi_group(tmp_path, frame_factory):
    frame = frame_factory(250_000, seed=3)
    path = tmp_path / "many.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=30_000)
    assert pq.ParquetFile(path).num_row_groups > 5
    return frame, path


def test_streamed_figures_equal_pandas(multi_group):
    frame, path = multi_group
    stats = compute_statistics(path, batch_rows=10_000, sample_size=20_000)
    assert stats.rows == len(frame)
    for name in ("age", "income", "visits"):
        col, series = stats.columns[name], frame[name]
        assert col.count == series.count()
        assert col.missing == series.isna().sum()
        assert col.mean == pytest.approx(series.mean(), rel=1e-12)
        assert col.std == pytest.approx(series.std(), rel=1e-9)
        assert col.min == series.min() and col.max == series.max()
        assert sum(col.histogram["counts"]) == series.count()
        # Sampled quantiles: rank error about 1/sqrt(20,000).
        for key, q in (("p05", 0.05), ("p50", 0.5), ("p95", 0.95)):
            lo, hi = series.quantile([max(q - 0.01, 0), min(q + 0.01, 1)])
            assert lo <= col.quantiles[key] <= hi, (name, key)
    city = stats.columns["city"]
    assert dict(city.top_values) == frame["city"].value_counts().to_dict()
    assert city.distinct == 3 and city.distinct_capped is False
    assert stats.columns["member"].kind == "boolean"
    assert stats.columns["visits"].kind == "integer"


def test_exact_quantiles_below_sample_size(wine):
    stats = compute_statistics_from_frame(wine)
    expected = wine["alcohol"].quantile([0.01, 0.25, 0.5, 0.99]).to_numpy()
    got = [stats.columns["alcohol"].quantiles[k] for k in ("p01", "p25", "p50", "p99")]
    np.testing.assert_allclose(got, expected)


def test_frame_and_file_agree(mixed, tmp_path):
    path = tmp_path / "m.parquet"
    mixed.to_parquet(path, index=False)
    assert compute_statistics(path).to_dict() == compute_statistics_from_frame(mixed).to_dict()


def test_json_round_trip(mixed):
    stats = compute_statistics_from_frame(mixed)
    again = DatasetStatistics.from_json(stats.to_json())
    assert again == stats
    assert again.columns["city"].top_values[0] == stats.columns["city"].top_values[0]


def test_duplicates_counted(wine):
    doubled = pd.concat([wine, wine.iloc[:30]])
    assert compute_statistics_from_frame(wine).duplicate_rows == 0
    assert compute_statistics_from_frame(doubled, batch_rows=50).duplicate_rows == 30


def test_category_cap_is_reported():
    frame = pd.DataFrame({"id": [f"user-{i}" for i in range(500)]})
    col = compute_statistics_from_frame(frame, category_cap=100).columns["id"]
    assert col.distinct == 100 and col.distinct_capped is True


def test_all_null_and_constant_columns():
    frame = pd.DataFrame({"empty": [None] * 10, "flat": [3.0] * 10}).astype({"empty": "float64"})
    stats = compute_statistics_from_frame(frame)
    assert stats.columns["empty"].count == 0 and stats.columns["empty"].missing_share == 1.0
    assert stats.columns["flat"].std == 0.0
    assert sum(stats.columns["flat"].histogram["counts"]) == 10


def test_integral_floats_are_noticed():
    frame = pd.DataFrame({"n": [1.0, 2.0, None], "x": [1.5, 2.0, 3.0]})
    stats = compute_statistics_from_frame(frame)
    assert stats.columns["n"].all_integral is True
    assert stats.columns["x"].all_integral is False


def test_mixed_type_column_error_names_fix():
    with pytest.raises(StatisticsError, match="cast it to one type"):
        compute_statistics_from_frame(pd.DataFrame({"a": [1, "x"]}))


def test_not_parquet(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    with pytest.raises(StatisticsError, match="cannot read"):
        compute_statistics(bad)


def test_infinite_values_are_counted_and_kept_out_of_the_figures(tmp_path):
    rng = np.random.default_rng(3)
    values = rng.normal(size=1000)
    frame = pd.DataFrame({"x": values, "flag": values > 0})
    frame.loc[[5, 6, 7], "x"] = [np.inf, -np.inf, np.nan]
    frame.to_parquet(tmp_path / "inf.parquet", index=False)
    # Batches smaller than the file and a quantile sample smaller than the rows: the
    # sample must skip the infinite values too.
    scan = scan_parquet(tmp_path / "inf.parquet", batch_rows=128, sample_size=300)
    col = scan.stats.columns["x"]
    finite = frame["x"][np.isfinite(frame["x"])]
    assert (col.infinite, col.count, col.missing) == (2, 999, 1)
    assert col.mean == pytest.approx(finite.mean()) and col.std == pytest.approx(finite.std())
    assert (col.min, col.max) == (finite.min(), finite.max())
    assert all(np.isfinite(v) for v in col.quantiles.values())
    assert all(np.isfinite(col.histogram["edges"])) and sum(col.histogram["counts"]) == 997
    assert np.isfinite(scan.samples["x"]).all()
    assert scan.stats.columns["flag"].infinite is None  # not a numeric column
    again = DatasetStatistics.from_json(scan.stats.to_json())
    assert again.columns["x"].infinite == 2


def test_statistics_json_without_infinite_counts_still_reads(mixed):
    raw = compute_statistics_from_frame(mixed).to_dict()
    for column in raw["columns"]:
        column.pop("infinite")  # as written before the field existed
    assert DatasetStatistics.from_dict(raw).columns["age"].infinite is None


def test_duplicate_rows_count_what_pandas_counts(tmp_path):
    """Rows hashed from Arrow columns (no pandas): nulls, -0.0, text, flags, times."""
    rng = np.random.default_rng(4)
    n = 20_000
    frame = pd.DataFrame({
        "n": rng.integers(0, 3, n),
        "x": rng.choice([0.0, -0.0, 1.5, np.nan], n),
        "t": rng.choice(["a", "b", None], n),
        "flag": rng.random(n) < 0.5,
        "when": pd.to_datetime(rng.integers(0, 2, n), unit="D"),
        "big": rng.choice([2**62, 2**62 + 1], n),  # distinct as integers, equal as floats
    })
    frame.to_parquet(tmp_path / "dups.parquet", index=False)
    expected = int(frame.duplicated().sum())
    assert 0 < expected < n
    assert compute_statistics(tmp_path / "dups.parquet", batch_rows=999).duplicate_rows == expected
    assert compute_statistics_from_frame(frame).duplicate_rows == expected
