"""Sharded statistics equal the single scan: a hive-partitioned folder, scanned both ways."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlops.data.drift import DriftThresholds, drift_from_scans
from kfp_mlops.data.shard_stats import ScanOptions, merge_partials, scan_shard
from kfp_mlops.data.shards import ShardError, ShardPlan, is_sharded_source, plan_shards
from kfp_mlops.data.stats import KLL_K, StatisticsError, scan_frame, scan_parquet

DAYS = ("2026-10-30", "2026-10-31", "2026-11-01")


def _day(n: int, seed: int, shift: float) -> pd.DataFrame:
    """Mixed columns with NaN, inf, whole numbers, categories, booleans and time stamps."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "amount": rng.lognormal(3 + shift, 1.0, n),
        "score": rng.normal(shift, 1, n),
        "items": rng.integers(0, 40, n),
        "shop": rng.choice([f"s{i}" for i in range(30)], n),
        "online": rng.random(n) < 0.3,
        "at": pd.Timestamp("2026-10-30") + pd.to_timedelta(rng.integers(0, 86_400, n), "s"),
    })
    frame.loc[frame.index % 13 == 0, "amount"] = np.nan
    frame.loc[frame.index % 501 == 0, "score"] = np.inf
    frame.loc[frame.index % 97 == 0, "shop"] = None
    return frame


def write_partitioned(root: Path, rows_per_file: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Two files a day under date=... folders; returns the whole table in source order."""
    frames = []
    for d, day in enumerate(DAYS):
        for part in range(2):
            frame = _day(rows_per_file, seed=10 * d + part, shift=shift)
            if part == 1:  # rows repeated from another file: duplicates across shards
                frame.iloc[:25] = frames[-1].drop(columns="date").iloc[:25].to_numpy()
            folder = root / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                           folder / f"part-{part}.parquet", row_group_size=rows_per_file // 3)
            frames.append(frame.assign(date=day))
    return pd.concat(frames, ignore_index=True)


def sharded_scan(source: str, tmp: Path, shard_rows: int, **options):
    plan = plan_shards(source, shard_rows=shard_rows)
    plan = ShardPlan.from_json(plan.to_json())  # as a shard task receives it
    opts = ScanOptions(**options)
    folders = [tmp / f"part-{i}" for i in range(len(plan.shards))]
    for i, folder in reversed(list(enumerate(folders))):  # any order
        scan_shard(plan, i, folder, opts)
    return plan, merge_partials(plan, folders)


def whole_scan(table: pd.DataFrame, tmp: Path, **options):
    path = tmp / "whole.parquet"
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow, path, row_group_size=7_000)
    return scan_parquet(path, **options)


def assert_same_statistics(merged, whole, rows: int, table: pd.DataFrame):
    a, b = merged.stats.to_dict(), whole.stats.to_dict()
    assert a["rows"] == b["rows"] == rows
    assert a["duplicate_rows"] == b["duplicate_rows"] > 0
    for ca, cb in zip(a["columns"], b["columns"], strict=True):
        for key in ca:
            if key in ("mean", "std") and ca[key] is not None:
                assert ca[key] == pytest.approx(cb[key], rel=1e-12), (ca["name"], key)
            elif key == "quantiles" and ca[key] is not None and rows > merged.stats.sample_size:
                # Within the KLL bound of the true quantile, by rank.
                values = np.sort(table[ca["name"]].to_numpy(dtype=float))
                values = values[np.isfinite(values)]
                bound = 0.0028 + 2 / len(values)
                for q, value in ca[key].items():  # ties: the value spans a range of ranks
                    low = np.searchsorted(values, value, side="left") / len(values)
                    high = np.searchsorted(values, value, side="right") / len(values)
                    target = int(q[1:]) / 100
                    assert low - bound <= target <= high + bound, (ca["name"], q)
            else:
                assert ca[key] == cb[key], (ca["name"], key)
    for name in whole.samples:
        np.testing.assert_array_equal(merged.samples[name], whole.samples[name])


@pytest.mark.parametrize("sample_size", [1_000_000, 3_000])
def test_sharded_statistics_equal_the_single_scan(tmp_path, sample_size):
    table = write_partitioned(tmp_path / "data", 6_000)
    plan, merged = sharded_scan(str(tmp_path / "data"), tmp_path, shard_rows=5_000,
                                sample_size=sample_size)
    assert len(plan.shards) > len(DAYS) * 2  # files split by row groups
    assert plan.partition_keys == ["date"]
    whole = whole_scan(table, tmp_path, sample_size=sample_size)
    assert_same_statistics(merged.scan, whole, len(table), table)
    method = merged.scan.stats.quantile_method
    assert (f"k={KLL_K}" in method) == (sample_size < len(table))


def test_the_content_hash_does_not_depend_on_the_shard_size(tmp_path):
    write_partitioned(tmp_path / "data", 3_000)
    _, small = sharded_scan(str(tmp_path / "data"), tmp_path / "a", shard_rows=1_000)
    _, large = sharded_scan(str(tmp_path / "data"), tmp_path / "b", shard_rows=100_000)
    assert small.content_sha256 == large.content_sha256
    (tmp_path / "data/date=2026-11-01/part-1.parquet").unlink()
    _, fewer = sharded_scan(str(tmp_path / "data"), tmp_path / "c", shard_rows=1_000)
    assert fewer.content_sha256 != small.content_sha256


def test_drift_decisions_equal_sharded_and_whole(tmp_path):
    reference = _day(4_000, seed=99, shift=0.0).drop(columns="at")
    ref = scan_frame(reference)
    for shift, expected in ((0.0, False), (1.0, True)):
        root = tmp_path / f"shift-{shift}"
        table = write_partitioned(root / "data", 3_000, shift=shift)
        _, merged = sharded_scan(str(root / "data"), root, shard_rows=2_000)
        whole = whole_scan(table, root)
        columns = list(reference.columns)
        a = drift_from_scans(ref, merged.scan, DriftThresholds(drift_share=0.3), columns)
        b = drift_from_scans(ref, whole, DriftThresholds(drift_share=0.3), columns)
        assert a.dataset_drift == b.dataset_drift == expected
        assert [f.drifted for f in a.features] == [f.drifted for f in b.features]
        for fa, fb in zip(a.features, b.features, strict=True):
            for metric, value in fa.metrics.items():
                assert value == pytest.approx(fb.metrics[metric], rel=1e-9, abs=1e-12)


def test_a_file_with_other_columns_is_named(tmp_path):
    write_partitioned(tmp_path / "data", 600)
    odd = tmp_path / "data/date=2026-11-01/part-9.parquet"
    pq.write_table(pa.table({"amount": [1.0], "other": ["x"]}), odd)
    with pytest.raises(ShardError, match="part-9.parquet"):
        plan_shards(str(tmp_path / "data"))


def test_an_empty_prefix_says_what_was_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    assert is_sharded_source(str(tmp_path / "empty"))
    with pytest.raises(ShardError, match=r"no Parquet files"):
        plan_shards(str(tmp_path / "empty"))


def test_a_missing_shard_is_refused_at_merge(tmp_path):
    write_partitioned(tmp_path / "data", 600)
    plan = plan_shards(str(tmp_path / "data"), shard_rows=500)
    scan_shard(plan, 0, tmp_path / "p0")
    with pytest.raises(StatisticsError, match="a shard task is missing"):
        merge_partials(plan, [tmp_path / "p0"])


def test_footerless_bounds_are_read_and_infinite_values_kept_out(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for i, values in enumerate(([1.0, math.inf, 3.0], [-2.0, 5.0, None])):
        pq.write_table(pa.table({"x": values}), root / f"f{i}.parquet", write_statistics=False)
    plan = plan_shards(str(root), shard_rows=3)
    assert plan.bounds == {"x": (-2.0, 5.0)}
    _, merged = sharded_scan(str(root), tmp_path, shard_rows=3)
    column = merged.scan.stats.columns["x"]
    assert (column.min, column.max, column.infinite, column.missing) == (-2.0, 5.0, 1, 1)


def test_an_s3_prefix_is_sharded_with_ranged_reads(tmp_path):
    from kfp_mlops.storage import open_store
    from tests.s3server import s3_server

    table = write_partitioned(tmp_path / "data", 900)
    with s3_server() as server:
        store = open_store(server.uri())
        for path in sorted((tmp_path / "data").rglob("*.parquet")):
            store.upload_file(f"events/{path.relative_to(tmp_path / 'data')}", path)
        store.put_bytes("events/_SUCCESS", b"")
        plan, merged = sharded_scan(server.uri("events/"), tmp_path, shard_rows=700)
    assert plan.files == 6 and plan.partition_keys == ["date"]
    whole = whole_scan(table, tmp_path)
    assert_same_statistics(merged.scan, whole, len(table), table)
