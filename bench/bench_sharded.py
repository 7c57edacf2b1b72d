"""Sharded monitoring at scale: `kfp-mlops monitor` on a prefix vs the per-shard scans.

Generates ``--shards`` Parquet files of the credit-risk table (``kfp_mlops.data.generator``,
drifted world; nothing downloaded), trains a model on a reference batch, then measures:

1. the baseline: each shard scanned alone, one process after another, exactly as one
   ``scan-shard`` pod runs it (``kfp_mlops.data.shard_stats.scan_shard``); their sum, with
   and without each process's start (interpreter and imports, which a pod pays too and
   the local pool's forked workers do not), and each process's peak RSS (what a pod
   needs);
2. the fan-out as users run it: ``kfp-mlops monitor --data PREFIX`` (kfp.local, the
   sharded pipeline, ``scan-shards`` with one worker a core): wall time, and the
   ``scan-shards`` task's seconds;
3. the ratios: fan-out / (sum of shard scans / parallelism), the task and the whole run;
4. equality on the first ``--equal-shards`` shards: the merged statistics and the drift
   decision against the single scan (``compute-statistics``' path) of the same rows
   written as one file.

    .venv/bin/python bench/bench_sharded.py --rows 100000000 --shards 20
    .venv/bin/python bench/bench_sharded.py --rows 4000000 --shards 4   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from kfp_mlops.processes import usable_cores

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("kfp-mlops")

SCAN_ONE = r'''
import sys, time
from kfp_mlops.data.shard_stats import scan_shard
from kfp_mlops.data.shards import ShardPlan
plan = ShardPlan.from_json(open(sys.argv[1]).read())
start = time.perf_counter()
scan_shard(plan, int(sys.argv[2]), sys.argv[3])
print(time.perf_counter() - start)
'''


def _write_shard(args: tuple[Path, int, int]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kfp_mlops.data.generator import make_batch

    path, rows, seed = args
    frame = make_batch("drifted", rows, seed)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=500_000)


def generate(folder: Path, rows: int, shards: int) -> None:
    marker = folder / f"_DONE-{rows}-{shards}"
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    per = rows // shards
    jobs = [(folder / f"part-{i:05d}.parquet", per, 100 + i) for i in range(shards)]
    with ProcessPoolExecutor(usable_cores()) as pool:
        list(pool.map(_write_shard, jobs))
    marker.write_text("")


def child_run(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the process and its children, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{argv[:3]} exited {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--equal-shards", type=int, default=2,
                        help="compare sharded and single scans on this many shards' rows")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "kfp-mlops-bench"))
    args = parser.parse_args()
    work = Path(args.work)
    data = work / f"sharded-{args.rows}-{args.shards}"
    t0 = time.perf_counter()
    generate(data, args.rows, args.shards)
    print(f"data: {args.rows:,} rows in {args.shards} files under {data} "
          f"({time.perf_counter() - t0:.0f} s to generate or find)", flush=True)

    from kfp_mlops.data.generator import make_batch
    from kfp_mlops.data.shards import plan_shards

    store, runs = work / "store", work / "runs"
    reference = work / "reference.csv"
    make_batch("reference", 5000, 1).to_csv(reference, index=False)
    common = ["--model-name", "loans", "--store", str(store), "--runs-dir", str(runs)]
    child_run([str(CLI), "run", "--data", str(reference), "--target", "default", *common])

    per_shard = (args.rows // args.shards)
    plan = plan_shards(str(data), shard_rows=per_shard)
    plan_path = work / "plan.json"
    plan_path.write_text(plan.to_json())
    times, inner, peaks = [], [], []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for i in range(len(plan.shards)):
            seconds, peak, out = child_run([sys.executable, "-c", SCAN_ONE, str(plan_path),
                                            str(i), f"{tmp}/shard-{i}"])
            times.append(seconds)
            inner.append(float(out))
            peaks.append(peak)
            print(f"  shard {i:2d} alone: {seconds:5.1f} s ({inner[-1]:.1f} s scanning), "
                  f"peak RSS {peak:6.0f} MiB", flush=True)
    parallelism = usable_cores()
    ideal = sum(times) / parallelism
    ideal_inner = sum(inner) / parallelism

    wall, peak_run, out = child_run([str(CLI), "monitor", "--data", str(data), *common,
                                     "--shard-rows", str(per_shard), "--output", "json"])
    summary = json.loads(out)
    task = summary["task_seconds"]
    results = {
        "rows": plan.rows, "shards": len(plan.shards), "parallelism": parallelism,
        "shard_scan_seconds_sum": round(sum(times), 1),
        "ideal_seconds": round(ideal, 1),
        "shard_scan_inner_seconds_sum": round(sum(inner), 1),
        "ideal_inner_seconds": round(ideal_inner, 1),
        "shard_scan_peak_rss_mib_max": round(max(peaks)),
        "scan_shards_task_seconds": task.get("scan-shards"),
        "monitor_wall_seconds": round(wall, 1),
        "monitor_peak_rss_mib": round(peak_run),
        "task_seconds": task,
        "ratio_scan_task_vs_ideal": round(task["scan-shards"] / ideal, 3),
        "ratio_plan_plus_scan_vs_ideal": round(
            (task["scan-shards"] + task["plan-shards"]) / ideal, 3),
        "ratio_monitor_wall_vs_ideal": round(wall / ideal, 3),
        "ratio_scan_task_vs_ideal_inner": round(task["scan-shards"] / ideal_inner, 3),
        "ratio_monitor_wall_vs_ideal_inner": round(wall / ideal_inner, 3),
        "decision": summary["monitor"],
        "equality": equality(data, plan, args.equal_shards, work),
    }
    print(json.dumps(results, indent=1))


def equality(data: Path, plan, shards: int, work: Path) -> dict:
    """Sharded vs single scan of the first ``shards`` files, written as one file."""
    import numpy as np
    import pyarrow.parquet as pq

    from kfp_mlops.data.drift import DriftThresholds, drift_from_scans
    from kfp_mlops.data.generator import make_batch
    from kfp_mlops.data.shard_stats import merge_partials, scan_all_shards
    from kfp_mlops.data.shards import plan_shards
    from kfp_mlops.data.stats import scan_frame, scan_parquet

    files = sorted(data.glob("part-*.parquet"))[:shards]
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        subset = Path(tmp) / "subset"
        subset.mkdir()
        for f in files:
            os.link(f, subset / f.name)
        sub_plan = plan_shards(str(subset), shard_rows=plan.shard_rows // 2)
        merged = merge_partials(sub_plan, scan_all_shards(sub_plan, Path(tmp) / "parts")).scan
        whole_path = Path(tmp) / "whole.parquet"
        with pq.ParquetWriter(whole_path, pq.read_schema(files[0])) as writer:
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(500_000):
                    writer.write_batch(batch)
        whole = scan_parquet(whole_path)
    a, b = merged.stats.to_dict(), whole.stats.to_dict()
    differ = []
    for ca, cb in zip(a["columns"], b["columns"], strict=True):
        for key in ca:
            if key in ("mean", "std") and ca[key] is not None:
                if not np.isclose(ca[key], cb[key], rtol=1e-12, atol=0):
                    differ.append(f"{ca['name']}.{key}")
            elif key != "quantiles" and ca[key] != cb[key]:
                differ.append(f"{ca['name']}.{key}")
    reference = scan_frame(make_batch("reference", 5000, 1))
    decisions = [drift_from_scans(reference, s, DriftThresholds(), target="default").dataset_drift
                 for s in (merged, whole)]
    same_samples = all(np.array_equal(merged.samples[n], whole.samples[n]) for n in whole.samples)
    return {"rows": a["rows"], "exact_fields_that_differ": differ,
            "duplicates": [a["duplicate_rows"], b["duplicate_rows"]],
            "samples_identical": same_samples, "drift_decisions": decisions}


if __name__ == "__main__":
    main()
