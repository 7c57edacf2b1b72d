"""Streaming ingest: batch-independent ids, CSV types as pandas reads them, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlops.data import sources
from kfp_mlops.data.content_hash import ContentHasher, table_content_hash
from kfp_mlops.data.ingest import ingest_to_parquet, parquet_as_is
from kfp_mlops.data.versions import list_dataset_versions
from kfp_mlops.errors import DataError
from kfp_mlops.storage import open_store


def _mixed_table(rows: int = 5000) -> pa.Table:
    rng = np.random.default_rng(3)
    text = np.array(["red", "green", "blue", ""], dtype=object)[rng.integers(0, 4, rows)]
    return pa.table({
        "x": pa.array(rng.normal(size=rows), mask=rng.random(rows) < 0.1),
        "n": pa.array(rng.integers(0, 9, rows), mask=rng.random(rows) < 0.1),
        "flag": pa.array(rng.random(rows) < 0.5),
        "colour": pa.array(text, mask=rng.random(rows) < 0.1),
        "when": pa.array(rng.integers(0, 10**9, rows) * 10**9, type=pa.timestamp("ns")),
    })


def test_the_hash_does_not_depend_on_batches_or_dictionary_encoding():
    table = _mixed_table()
    whole = table_content_hash(table)
    hasher = ContentHasher(table.schema)
    for batch in table.to_batches(max_chunksize=333):
        hasher.update(batch)
    assert hasher.hexdigest() == whole
    sliced = ContentHasher(table.schema)  # slices share buffers with offsets: still equal
    for start in range(0, table.num_rows, 999):
        sliced.update(table.slice(start, 999))
    assert sliced.hexdigest() == whole
    # Any change of a value, an order or a null gives another hash.
    changed = table.set_column(0, "x", pa.array(table["x"].to_numpy(zero_copy_only=False) + 1))
    assert table_content_hash(changed) != whole
    assert table_content_hash(table.slice(1)) != whole
    assert table_content_hash(table.select(list(reversed(table.column_names)))) != whole


def test_same_parquet_content_same_version_whatever_the_row_groups(tmp_path, monkeypatch):
    table = _mixed_table()
    pq.write_table(table, tmp_path / "small-groups.parquet", row_group_size=97)
    pq.write_table(table, tmp_path / "one-group.parquet")
    store = str(tmp_path / "store")
    first = ingest_to_parquet(str(tmp_path / "small-groups.parquet"), tmp_path / "a.parquet", store)
    monkeypatch.setattr(sources, "PARQUET_BATCH_ROWS", 1234)
    second = ingest_to_parquet(str(tmp_path / "one-group.parquet"), tmp_path / "b.parquet", store)
    assert first.dataset_version == second.dataset_version and not second.new_version
    assert pq.read_table(tmp_path / "b.parquet").equals(table)


def test_csv_reads_as_pandas_reads_it_even_when_late_rows_change_a_type(tmp_path, monkeypatch):
    # Small blocks: the types are inferred from the first rows only, then widened.
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 4096)
    rows = 3000
    frame = pd.DataFrame({
        "late_float": [str(i) for i in range(rows - 1)] + ["1.5"],
        # Words in 400 of 3,000 rows: past the placeholder share, text (as pandas).
        "late_word": [str(i) for i in range(rows - 400)] + ["many"] * 400,
        "day": ["2024-01-02"] * rows,
        "empty": [""] * rows,
        "text": ["a,b", 'say "hi"', "two\nlines"] * (rows // 3),
        "missing": ["NA", "1", "n/a"] * (rows // 3),
    })
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    ingest_to_parquet(str(path), tmp_path / "out.parquet")
    ours = pq.read_table(tmp_path / "out.parquet").to_pandas()
    theirs = pd.read_csv(path)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
    # One late placeholder in a number column: numbers, the placeholder missing (where
    # pandas would read text; kfp_mlops/data/placeholders.py).
    frame["late_dash"] = [str(i) for i in range(rows - 1)] + ["-"]
    frame.to_csv(path, index=False)
    result = ingest_to_parquet(str(path), tmp_path / "dash.parquet")
    assert result.placeholders == {"late_dash": {"-": 1}}
    dash = pq.read_table(tmp_path / "dash.parquet").column("late_dash")
    assert dash.type == pa.float64() and dash.null_count == 1
    types = pq.read_schema(tmp_path / "out.parquet")
    assert types.field("late_float").type == pa.float64()
    assert types.field("late_word").type == pa.string()
    assert types.field("day").type == pa.string()  # pandas does not parse dates either
    assert types.field("empty").type == pa.float64()


def test_a_pandas_index_column_is_not_data(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3]}, index=pd.Index([10, 20, 30], name="row"))
    frame.to_parquet(tmp_path / "indexed.parquet")
    result = ingest_to_parquet(str(tmp_path / "indexed.parquet"), tmp_path / "out.parquet")
    assert result.columns == 1
    assert pq.read_schema(tmp_path / "out.parquet").names == ["a"]
    assert parquet_as_is(str(tmp_path / "indexed.parquet")) is None  # copied without it
    frame.reset_index(drop=True).to_parquet(tmp_path / "plain.parquet")
    assert parquet_as_is(str(tmp_path / "plain.parquet")) == tmp_path / "plain.parquet"


def test_nested_parquet_columns_are_refused_by_name(tmp_path):
    pq.write_table(pa.table({"ok": [1, 2], "tags": [[1, 2], [3]], "point": [{"x": 1}, {"x": 2}]}),
                   tmp_path / "nested.parquet")
    with pytest.raises(DataError, match=r"'tags' \(list\), 'point' \(struct/map\)"):
        ingest_to_parquet(str(tmp_path / "nested.parquet"), tmp_path / "out.parquet")
    with pytest.raises(DataError, match="'tags' \\(list\\)"):
        parquet_as_is(str(tmp_path / "nested.parquet"))


def test_a_bad_row_late_in_the_file_publishes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 4096)
    lines = ["a,b"] + [f"{i},{i}" for i in range(5000)] + ["1,2,3"]
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    store = str(tmp_path / "store")
    out = tmp_path / "out" / "data.parquet"
    with pytest.raises(DataError, match="Expected 2 columns, got 3"):
        ingest_to_parquet(str(tmp_path / "bad.csv"), out, store)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert list_dataset_versions(open_store(store)) == []


_PEAK = """
import json, resource, sys
from kfp_mlops.data.ingest import ingest_to_parquet
result = ingest_to_parquet(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"rows": result.rows,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _csv(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    frame["c"] = np.array(["alpha", "beta", "gamma"], dtype=object)[rng.integers(0, 3, rows)]
    frame.to_csv(path, index=False, float_format="%.6f")
    return path


def test_peak_memory_follows_the_batch_not_the_rows(tmp_path):
    """Ten times the rows (75 MB of CSV) may not cost ten times the memory."""
    peaks = {}
    for rows in (40_000, 400_000):
        csv = _csv(tmp_path / f"{rows}.csv", rows)
        out = subprocess.run(
            [sys.executable, "-c", _PEAK, str(csv), str(tmp_path / f"{rows}.parquet"),
             str(tmp_path / "store")], check=True, capture_output=True, text=True)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        assert figures["rows"] == rows
        peaks[rows] = figures["peak_mib"]
    # Loading the table whole would add well over 100 MiB at 400k rows (pandas frame
    # plus Arrow copy); streaming keeps the growth to a few batches.
    assert peaks[400_000] - peaks[40_000] < 60, peaks


def test_ingest_statistics_and_drift_of_files_import_no_pandas(tmp_path):
    """Each costs about a second of every task's start; pyarrow's own converters
    (``to_numpy``, ``pa.scalar``) would import pandas, so the suite reads buffers."""
    _mixed_table().to_pandas().to_csv(tmp_path / "data.csv", index=False)
    probe = f"""
import sys
from kfp_mlops.data.ingest import ingest_to_parquet
from kfp_mlops.data.stats import compute_statistics
from kfp_mlops.data.drift import drift_from_scans
from kfp_mlops.data.stats import scan_parquet
ingest_to_parquet({str(tmp_path / "data.csv")!r}, {str(tmp_path / "d.parquet")!r},
                  {str(tmp_path / "store")!r})
stats = compute_statistics({str(tmp_path / "d.parquet")!r})
scan = scan_parquet({str(tmp_path / "d.parquet")!r}, count_duplicates=False)
print(stats.duplicate_rows is not None, "pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True)
    assert out.stdout.split() == ["True", "False"]


def test_drift_tests_match_scipy():
    """One sort serves KS and Wasserstein; large samples take Kolmogorov's limit."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

    from kfp_mlops.data.drift import _chi2_pvalue, _jensenshannon, _ks_and_wasserstein, _Sorted

    rng = np.random.default_rng(2)
    for n1, n2 in [(30_000, 20_000), (20_000, 15), (800, 1200)]:
        for shift in (0.0, 0.03):
            r, c = rng.normal(size=n1), np.round(rng.normal(shift, 1, size=n2), 2)
            statistic, pvalue, distance = _ks_and_wasserstein(_Sorted.of(r, c))
            theirs = ks_2samp(r, c)
            assert statistic == pytest.approx(theirs.statistic, abs=1e-12)
            assert pvalue == pytest.approx(theirs.pvalue, abs=0.002)
            assert distance == pytest.approx(wasserstein_distance(r, c), rel=1e-9)
            # Runs of ties on both sides: the gap counts only at each run's end.
            r, c = rng.integers(0, 40, n1) * 1.0, rng.integers(0, 40 + int(shift * 100), n2) * 1.0
            statistic, _, distance = _ks_and_wasserstein(_Sorted.of(r, c))
            assert statistic == pytest.approx(ks_2samp(r, c).statistic, abs=1e-12)
            assert distance == pytest.approx(wasserstein_distance(r, c), rel=1e-9)
    for k in (2, 5):  # 2 x 2 takes Yates' correction, as scipy does
        table = rng.integers(1, 400, (2, k)).astype(float)
        assert _chi2_pvalue(table) == pytest.approx(chi2_contingency(table)[1], rel=1e-9)
        assert _jensenshannon(table[0], table[1]) == pytest.approx(
            jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum()), rel=1e-9)
