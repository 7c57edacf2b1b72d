"""Benchmark the data stages as users run them: `kfp-mlops data drift` beside a scan.

1. Generates a reference and a current Parquet file of ``--rows`` rows x 20 columns
   (12 float, 2 integer, 6 string; some missing; drift injected into 6 columns of the
   current file), chunk by chunk so the generator never holds the table.
2. Times, side by side and interleaved (``--repeats`` rounds, medians), each as a whole
   process: a pyarrow scan of both files (the floor: read every column of every row
   group), ``kfp-mlops data drift --report`` on the files, and Evidently's
   DataDriftPreset (read both files with pandas, run the preset, save its HTML) on
   ``min(--rows, --evidently-rows)`` rows. Prints ratios to the scan and to Evidently,
   each process's peak RSS, and checks that the drifted columns agree.
3. ``--stages``: statistics of both files with schema inference and validation (what the
   compute-statistics and validate-data tasks run), ingest into a store from CSV copies
   of the files and from the Parquet, and drift from the CSV copies (streamed through
   ingest), each one process, with its peak RSS.

Usage: ``python bench/bench_data.py --rows 1000000`` (Evidently: ``pip install -e '.[bench]'``);
``--rows 10000000 --evidently-rows 0 --stages`` for the scale figures. ``--workdir DIR``
keeps the generated files there and reuses them on the next call (same ``--rows``);
``--evidently-rows 0`` skips Evidently.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 500_000
N_FLOAT, N_INT, N_CAT = 12, 2, 6
DRIFTED = {"f00", "f01", "f05", "i00", "c00", "c03"}


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


SCAN = """
import sys, pyarrow.parquet as pq
for path in sys.argv[1:]:
    for _ in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=65536):
        pass
"""

EVIDENTLY = """
import json, sys
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
snapshot.save_html(sys.argv[3])
drifted = []
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        value, threshold = float(metric["value"]), float(config["threshold"])
        p_value = "p_value" in config.get("method", "")
        if (value < threshold) if p_value else (value >= threshold):
            drifted.append(config["column"])
print(json.dumps(sorted(drifted)))
"""

STATISTICS = """
import json, sys
from kfp_mlops.data.schema import infer_schema
from kfp_mlops.data.stats import compute_statistics
from kfp_mlops.data.validation import validate
reference = compute_statistics(sys.argv[1])
result = validate(compute_statistics(sys.argv[2]), infer_schema(reference))
print(json.dumps({"passed": result.passed, "anomalies": len(result.anomalies)}))
"""

INGEST = """
import json, sys
from kfp_mlops.data.ingest import ingest_to_parquet
result = ingest_to_parquet(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"rows": result.rows, "version": result.dataset_version}))
"""


# Runs a command and reports its peak RSS. A small process of its own, because a child's
# ru_maxrss counts what it held before exec too: forked from this (large) process, the
# figure would be this process's size.
PROBE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
sys.stderr.write(f"\\nPEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(code)
"""


def run_timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one process."""
    with tempfile.TemporaryFile("w+") as err:  # a file: a full stderr pipe cannot block
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PROBE, *cmd], stdout=subprocess.PIPE,
                              stderr=err, text=True)
        seconds = time.perf_counter() - start
        err.seek(0)
        errors = err.read()
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} {cmd[1]} ... failed ({proc.returncode}):\n{errors[-2000:]}")
    peak_kib = int(errors.rsplit("PEAK_RSS_KIB", 1)[1].split()[0])
    return seconds, peak_kib / 1024, proc.stdout


def kfp_mlops() -> str:
    return str(Path(sys.executable).with_name("kfp-mlops"))


def compare(ref: Path, cur: Path, workdir: Path, repeats: int, evidently_rows: int) -> None:
    """The three processes side by side, interleaved, medians and peak RSS."""
    sides = {
        "pyarrow scan of both files": [sys.executable, "-c", SCAN, str(ref), str(cur)],
        "kfp-mlops data drift --report": [
            kfp_mlops(), "data", "drift", "--reference", str(ref), "--current", str(cur),
            "--report", str(workdir / "drift.html"), "--store", str(workdir / "store"),
            "--output", "json"],
    }
    if evidently_rows:
        n = min(evidently_rows, pq.ParquetFile(ref).metadata.num_rows)
        eref, ecur = (ref, cur) if n == pq.ParquetFile(ref).metadata.num_rows else (
            _head(ref, n, workdir), _head(cur, n, workdir))
        sides["evidently DataDriftPreset (+HTML)"] = [
            sys.executable, "-c", EVIDENTLY, str(eref), str(ecur), str(workdir / "ev.html")]
    times: dict[str, list[float]] = {name: [] for name in sides}
    peaks: dict[str, float] = {name: 0.0 for name in sides}
    outputs: dict[str, str] = {}
    for _ in range(repeats):
        for name, cmd in sides.items():
            seconds, peak, outputs[name] = run_timed(cmd)
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    medians = {name: statistics.median(t) for name, t in times.items()}
    scan = medians["pyarrow scan of both files"]
    rows = pq.ParquetFile(ref).metadata.num_rows
    scan_peak = peaks["pyarrow scan of both files"]
    print(f"\n{rows:,} rows x 20 columns per file, median of {repeats} interleaved runs:")
    print(f"  {'process':36s} {'seconds':>8s} {'x scan':>7s} {'peak RSS':>10s} {'x scan':>7s}")
    for name, seconds in medians.items():
        print(f"  {name:36s} {seconds:8.2f} {seconds / scan:6.2f}x {peaks[name]:7.0f} MiB "
              f"{peaks[name] / scan_peak:6.2f}x")
    drift_times = times["kfp-mlops data drift --report"]
    pairs = sorted(d / s for d, s in zip(drift_times, times["pyarrow scan of both files"],
                                          strict=True))
    print(f"  drift / scan, run by run (interleaved pairs): min {pairs[0]:.2f}x, median "
          f"{statistics.median(pairs):.2f}x, max {pairs[-1]:.2f}x")
    suite = json.loads(outputs["kfp-mlops data drift --report"])
    suite_set = sorted(f["column"] for f in suite["features"] if f["drifted"])
    print(f"  drifted (suite):     {suite_set}")
    print(f"  injected:            {sorted(DRIFTED)}; equal: {suite_set == sorted(DRIFTED)}")
    if evidently_rows:
        evid = medians["evidently DataDriftPreset (+HTML)"]
        evid_set = json.loads(outputs["evidently DataDriftPreset (+HTML)"].strip().splitlines()[-1])
        print(f"  drifted (evidently): {evid_set}; equal: {evid_set == suite_set}")
        print(f"  suite vs Evidently on {n:,} rows: ", end="")
        if n == rows:
            print(f"{evid / medians['kfp-mlops data drift --report']:.1f}x faster")
        else:
            print("(Evidently on a head of the files; time the suite there too)")


def _head(path: Path, rows: int, workdir: Path) -> Path:
    target = workdir / f"head-{rows}-{path.name}"
    if not target.exists():
        table = pq.ParquetFile(path).iter_batches(batch_size=rows)
        pq.write_table(pa.Table.from_batches([next(table)]), target, row_group_size=100_000)
    return target


def csv_paths(ref: Path, cur: Path) -> tuple[Path, Path]:
    """CSV copies of both files, written batch by batch."""
    from pyarrow import csv

    paths = []
    for path in (ref, cur):
        target = path.with_suffix(".csv")
        if not target.exists():
            reader = pq.ParquetFile(path)
            with csv.CSVWriter(target, reader.schema_arrow) as writer:
                for batch in reader.iter_batches(batch_size=100_000):
                    writer.write_batch(batch)
        paths.append(target)
    return paths[0], paths[1]


def stage_figures(ref: Path, cur: Path, workdir: Path) -> None:
    """The other data stages, and drift from CSV: one run each, wall time and peak RSS."""
    cref, ccur = csv_paths(ref, cur)
    print(f"\nthe other stages; CSV copies {cref.stat().st_size / 2**20:.0f} MiB each; one run "
          "each:")
    cases = {
        "statistics of both + schema + validation": [
            sys.executable, "-c", STATISTICS, str(ref), str(cur)],
        "kfp-mlops data drift (CSV inputs)": [
            kfp_mlops(), "data", "drift", "--reference", str(cref), "--current", str(ccur),
            "--report", str(workdir / "drift-csv.html"), "--store", str(workdir / "store")],
        "ingest CSV -> Parquet + version": [
            sys.executable, "-c", INGEST, str(cref), str(workdir / "ingested.parquet"),
            str(workdir / "store")],
        "ingest Parquet -> Parquet + version": [
            sys.executable, "-c", INGEST, str(ref), str(workdir / "ingested2.parquet"),
            str(workdir / "store")],
    }
    for name, cmd in cases.items():
        seconds, peak, _ = run_timed(cmd)
        print(f"  {name:36s} {seconds:8.2f} s {peak:7.0f} MiB peak RSS")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--evidently-rows", type=int, default=1_000_000,
                        help="rows for Evidently (0 to skip it)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", action="store_true",
                        help="also statistics + validation, ingest (CSV, Parquet) and drift "
                        "from CSV")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the generated files, reused when they exist "
                        "(default: a new temporary folder)")
    args = parser.parse_args(argv)
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
    compare(ref, cur, workdir, args.repeats, args.evidently_rows)
    if args.stages:
        stage_figures(ref, cur, workdir)


if __name__ == "__main__":
    main()
