"""Benchmark the data life-cycle core: memory at scale, speed against peers.

1. Generates a reference and a current Parquet file of ``--rows`` rows x 20 columns
   (12 float, 2 integer, 6 string; some missing; drift injected into 4 columns of the
   current file), chunk by chunk so the generator never holds the table.
2. Runs statistics + schema inference + validation + drift on the files in a fresh
   subprocess and reports its peak RSS (``ru_maxrss``) and wall time.
3. On ``min(--rows, --compare-rows)`` rows, times (median of ``--repeats`` runs, side by
   side) the suite's drift analysis against Evidently's DataDriftPreset and a plain
   ``pandas.describe()`` baseline, and checks that the drifted-feature sets agree.

Usage: ``python bench/bench_data.py --rows 1000000`` (quick: ``--rows 200000``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 500_000
N_FLOAT, N_INT, N_CAT = 12, 2, 6
DRIFTED = {"f00", "f01", "i00", "c00"}


def _chunk(rng: np.random.Generator, n: int, drift: bool) -> pa.Table:
    cols: dict[str, pa.Array] = {}
    for j in range(N_FLOAT):
        shift = 0.5 if drift and f"f{j:02d}" in DRIFTED else 0.0
        values = rng.normal(10 * j + shift * (j + 1), j + 1, n)
        mask = rng.random(n) < 0.05 if j % 3 == 0 else None  # every third float misses 5 %
        cols[f"f{j:02d}"] = pa.array(values, mask=mask)
    for j in range(N_INT):
        high = 60 if drift and f"i{j:02d}" in DRIFTED else 50
        cols[f"i{j:02d}"] = pa.array(rng.integers(0, high, n))
    for j in range(N_CAT):
        k = 5 + 10 * j
        weights = np.arange(1, k + 1, dtype=float)
        if drift and f"c{j:02d}" in DRIFTED:
            weights = weights[::-1].copy()
        codes = rng.choice(k, n, p=weights / weights.sum())
        labels = np.array([f"v{i}" for i in range(k)], dtype=object)
        mask = rng.random(n) < 0.02 if j == 1 else None
        cols[f"c{j:02d}"] = pa.array(labels[codes], type=pa.string(), mask=mask)
    return pa.table(cols)


def generate(path: Path, rows: int, seed: int, drift: bool) -> None:
    """Write ``rows`` rows to ``path`` in chunks (bounded memory)."""
    rng = np.random.default_rng(seed)
    writer = None
    done = 0
    while done < rows:
        table = _chunk(rng, min(CHUNK, rows - done), drift)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
        done += table.num_rows
    assert writer is not None
    writer.close()


def suite_run(ref: str, cur: str) -> dict[str, float]:
    """Whole core workflow on files; runs in a fresh process to measure its own peak RSS."""
    from kfp_mlops.data.drift import detect_drift
    from kfp_mlops.data.schema import infer_schema
    from kfp_mlops.data.stats import compute_statistics
    from kfp_mlops.data.validation import validate

    start = time.perf_counter()
    ref_stats = compute_statistics(ref)
    stats = compute_statistics(cur)
    t_stats = time.perf_counter() - start
    result = validate(stats, infer_schema(ref_stats))
    t_validate = time.perf_counter() - start - t_stats
    drift = detect_drift(ref, cur)
    t_all = time.perf_counter() - start
    return {
        "stats_seconds_two_files": t_stats,
        "validate_seconds": t_validate,
        "drift_seconds": t_all - t_stats - t_validate,
        "total_seconds": t_all,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "validation_passed": result.passed,
        "anomalies": len(result.anomalies),
        "drifted": sorted(drift.drifted_features),
    }


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def compare(ref: Path, cur: Path, repeats: int) -> None:
    """Suite drift vs Evidently vs pandas describe(), side by side on the same files."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from kfp_mlops.data.drift import detect_drift

    def pandas_describe():
        a, b = pd.read_parquet(ref), pd.read_parquet(cur)
        return a.describe(include="all"), b.describe(include="all")

    def suite_files():
        return set(detect_drift(ref, cur).drifted_features)

    def suite_frames():
        a, b = pd.read_parquet(ref), pd.read_parquet(cur)
        return set(detect_drift(a, b).drifted_features)

    def evidently_run():
        a, b = pd.read_parquet(ref), pd.read_parquet(cur)
        snapshot = Report([DataDriftPreset()]).run(current_data=b, reference_data=a)
        drifted = set()
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config.get("type", "").endswith("ValueDrift"):
                value, threshold = float(metric["value"]), float(config["threshold"])
                p_value = "p_value" in config.get("method", "")
                if (value < threshold) if p_value else (value >= threshold):
                    drifted.add(config["column"])
        return drifted

    runs = {
        "pandas read+describe (baseline)": pandas_describe,
        "suite drift, Parquet streamed": suite_files,
        "suite drift, DataFrames": suite_frames,
        "evidently DataDriftPreset": evidently_run,
    }
    results = {name: _median_time(fn, repeats) for name, fn in runs.items()}
    base = results["pandas read+describe (baseline)"][0]
    evid = results["evidently DataDriftPreset"][0]
    print(f"\nDrift on {pq.ParquetFile(ref).metadata.num_rows:,} rows x 20 columns, "
          f"median of {repeats} runs:")
    print(f"  {'run':34s} {'seconds':>8s} {'vs pandas':>10s} {'vs evidently':>13s}")
    for name, (seconds, _) in results.items():
        print(f"  {name:34s} {seconds:8.2f} {seconds / base:9.2f}x {seconds / evid:12.2f}x")
    suite_set = results["suite drift, Parquet streamed"][1]
    evid_set = results["evidently DataDriftPreset"][1]
    print(f"  drifted (suite):     {sorted(suite_set)}")  # type: ignore[arg-type]
    print(f"  drifted (evidently): {sorted(evid_set)}")  # type: ignore[arg-type]
    print(f"  injected:            {sorted(DRIFTED)}; agree: {suite_set == evid_set}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compare-rows", type=int, default=1_000_000,
                        help="rows for the Evidently/pandas comparison (0 to skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--suite-run", nargs=2, metavar=("REF", "CUR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.suite_run:
        print(json.dumps(suite_run(*args.suite_run)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kfp-mlops-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ref, cur = workdir / f"ref-{args.rows}.parquet", workdir / f"cur-{args.rows}.parquet"
    start = time.perf_counter()
    for path, seed, drift in ((ref, 0, False), (cur, 1, True)):
        if not path.exists():
            generate(path, args.rows, seed, drift)
    size = (ref.stat().st_size + cur.stat().st_size) / 2**20
    print(f"data: 2 files x {args.rows:,} rows x 20 columns, {size:.0f} MB on disk "
          f"({time.perf_counter() - start:.0f} s to generate), in {workdir}")
    out = subprocess.run(
        [sys.executable, __file__, "--suite-run", str(ref), str(cur)],
        check=True, capture_output=True, text=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print("suite (stats x2 + schema + validation + drift) in a fresh process:")
    for key, value in figures.items():
        print(f"  {key:26s} {value:.2f}" if isinstance(value, float) else f"  {key:26s} {value}")
    if args.compare_rows:
        n = min(args.rows, args.compare_rows)
        cref, ccur = workdir / f"ref-{n}.parquet", workdir / f"cur-{n}.parquet"
        for path, seed, drift in ((cref, 0, False), (ccur, 1, True)):
            if not path.exists():
                generate(path, n, seed, drift)
        compare(cref, ccur, args.repeats)


if __name__ == "__main__":
    main()
