"""Tuning: N trials in parallel vs the same trials one after another, through kfp.local.

Every side is a real kfp.local run (a child process) of the tuning steps the training
pipeline adds (``add_tuning_steps``: make-candidates -> trials -> select-best) on the
same generated classification table, alternating, ``--repeats`` times each:

    pool-1   one run-trials task, the fits one after another (workers=1): the serial baseline
    pool-N   one run-trials task, the fits on every usable core: what a local run does
    pods-1   dsl.ParallelFor over run-trial, parallelism=1 (the cluster shape, run locally)
    pods-8   dsl.ParallelFor, parallelism=8 (the local shape before run-trials)

Prints each side's median wall time, CPU seconds (user + system, every process of the
run) and peak RSS, the speed-ups against pool-1 and pods-1, and where a trial's time
goes: process start and imports, reading the data, the fits.

    .venv/bin/python bench/bench_tuning.py                 # 50,000 rows, 8 trials
    .venv/bin/python bench/bench_tuning.py --rows 20000 --trials 4 --repeats 3
    .venv/bin/python bench/bench_tuning.py --sides pool-1,pool-N --omp-check
"""

# No "from __future__ import annotations": KFP reads the component signature at runtime.
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve()
SIDES = ("pool-1", "pool-N", "pods-1", "pods-8")
STATS_LINE = re.compile(r"(\d+) fits on (\d+) process(?:es)?: ([\d.]+) s wall, ([\d.]+) CPU-s")


def generate(rows: int, path: Path, seed: int = 0) -> None:
    """A classification table: 8 numbers, 3 categories, some missing values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    for i, levels in enumerate([5, 12, 30]):
        frame[f"c{i}"] = "level-" + rng.integers(0, levels, rows).astype(str)
    score = frame["x0"] + 0.5 * frame["x1"] - frame["x2"] * (frame["c0"] == "level-1")
    frame["label"] = np.where(score + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    for column in ("x3", "c1"):
        frame.loc[rng.random(rows) < 0.05, column] = None
    frame.to_parquet(path, index=False)


def run_pipeline(data: str, trials: int, side: str, runs_dir: str) -> None:
    """Child process: one kfp.local tuning run shaped as ``side``."""
    import tempfile
    import warnings

    from kfp import dsl, local
    from kfp.dsl import Dataset, Output

    from kfp_mlops.components.image import DEFAULT_IMAGE
    from kfp_mlops.pipelines.steps import add_tuning_steps, trial_loop_pipeline

    shape, count = side.split("-")
    workers = 0 if count == "N" else int(count)
    # The pods shape gathers its trials through the store's fan-in prefix.
    loop = trial_loop_pipeline(parallelism=max(workers, 1)) if shape == "pods" else None
    store = tempfile.mkdtemp(prefix="bench-tuning-store-")

    @dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
    def read_parquet(path: str, dataset: Output[Dataset]):
        import shutil

        shutil.copyfile(path, dataset.path)

    @dsl.pipeline(name="bench-tuning")
    def tuning(path: str, n_trials: int):
        data_task = read_parquet(path=path)
        add_tuning_steps(
            train_data=data_task.outputs["dataset"], target="label", task="classification",
            estimator="auto", search_space="auto", n_trials=n_trials, seed=0, params="{}",
            trials_as=shape, workers=workers, store=store, trial_loop=loop,
        )

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=runs_dir,
               raise_on_error=True)
    tuning(path=data, n_trials=trials)


def timed(argv: list[str]) -> dict:
    """Wall and CPU seconds, peak RSS (MiB) of ``argv``'s process tree, and its stdout."""
    wrapper = (
        "import resource, subprocess, sys, json;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(json.dumps([p.returncode, r.ru_maxrss, r.ru_utime + r.ru_stime, p.stdout,"
        " p.stderr[-2000:]]))"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True,
                         check=True)
    seconds = time.perf_counter() - start
    code, rss_kib, cpu, stdout, tail = json.loads(out.stdout)
    if code != 0:
        raise SystemExit(f"run failed ({code}): {argv}\n{tail}")
    found = STATS_LINE.search(stdout)
    fits = None
    if found:
        fits = {"fits": int(found[1]), "workers": int(found[2]), "wall": float(found[3]),
                "cpu": float(found[4])}
    best = re.search(r"Best of \d+ trials: .* with (\{.*\})", stdout)
    return {"wall": seconds, "cpu": cpu, "rss": rss_kib / 1024, "fits": fits,
            "best": best[1] if best else None}


def start_up() -> tuple[float, float]:
    """Wall and CPU seconds of a fresh Python importing what a trial task imports."""
    code = ("import kfp.dsl.executor_main, pandas, sklearn.model_selection, sklearn.ensemble;"
            "import kfp_mlops.model.tuning, kfp_mlops.data.ingest, kfp_mlops.components.model")
    walls, cpus = [], []
    for _ in range(3):
        before = os.times()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        walls.append(time.perf_counter() - start)
        after = os.times()
        cpus.append(after.children_user + after.children_system
                    - before.children_user - before.children_system)
    return statistics.median(walls), statistics.median(cpus)


def omp_check(data: str, threads: int) -> tuple[float, float, float, float]:
    """One candidate's 3-fold CV with 1 OpenMP thread and with ``threads``: wall and CPU s."""
    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model.settings import TrainingSettings
    from kfp_mlops.model.tuning import make_candidates, run_trial

    frame = read_dataset(data)
    params = make_candidates(TrainingSettings(task="classification", n_trials=1, seed=0))[0]
    figures = []
    for limit in (1, threads):
        cpu, start = time.process_time(), time.perf_counter()
        settings = TrainingSettings(target="label", task="classification", params=params, seed=0)
        run_trial(frame, settings, threads=limit)
        figures += [time.perf_counter() - start, time.process_time() - cpu]
    return tuple(figures)


def main() -> None:
    """Run the sides, print medians, ratios and the time split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sides", default=",".join(SIDES),
                        help=f"comma-separated, from {', '.join(SIDES)}")
    parser.add_argument("--omp-check", action="store_true",
                        help="also time one trial with 1 OpenMP thread vs one per core")
    parser.add_argument("--child", nargs=3, metavar=("DATA", "SIDE", "RUNS_DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, side, runs_dir = args.child
        run_pipeline(data, args.trials, side, runs_dir)
        return

    from kfp_mlops.model.tuning import usable_cores

    sides = [s for s in args.sides.split(",") if s]
    unknown = set(sides) - set(SIDES)
    if unknown:
        raise SystemExit(f"unknown sides {sorted(unknown)}; choose from {', '.join(SIDES)}")
    cores = usable_cores()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench.parquet"
        generate(args.rows, data)
        print(f"{args.rows} rows, {args.trials} trials (3-fold CV, default search space), "
              f"{cores} usable cores, {args.repeats} repeats per side; load average "
              f"{os.getloadavg()[0]:.1f} at the start", flush=True)
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for repeat in range(args.repeats):
            for side in sides:
                run = timed([sys.executable, str(HERE), "--trials", str(args.trials), "--child",
                             str(data), side, str(Path(tmp) / f"runs-{side}-{repeat}")])
                runs[side].append(run)
                fits = run["fits"]
                extra = (f"; fits {fits['wall']:.1f} s wall, {fits['cpu']:.1f} CPU-s on "
                         f"{fits['workers']} process(es)" if fits else "")
                print(f"  {side}: {run['wall']:.1f} s, {run['cpu']:.1f} CPU-s "
                      f"({run['cpu'] / run['wall']:.2f} cores busy), peak RSS "
                      f"{run['rss']:.0f} MiB{extra}", flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        chosen = {json.dumps(json.loads(r["best"]), sort_keys=True)
                  for rs in runs.values() for r in rs if r["best"]}
        print(f"chosen parameters identical on every side: {len(chosen) == 1} {sorted(chosen)}")
        wall = {side: statistics.median(r["wall"] for r in rs) for side, rs in runs.items()}
        cpu = {side: statistics.median(r["cpu"] for r in rs) for side, rs in runs.items()}
        print("\nside     wall s   CPU-s  cores busy  peak RSS MiB")
        for side in sides:
            print(f"{side:7} {wall[side]:7.1f} {cpu[side]:7.1f} {cpu[side] / wall[side]:10.2f} "
                  f"{max(r['rss'] for r in runs[side]):13.0f}")
        for base in ("pool-1", "pods-1"):
            if base in wall:
                others = ", ".join(f"{side} {wall[base] / wall[side]:.2f}x"
                                   for side in sides if side != base)
                print(f"speed-up against {base} (the trials one after another): {others}")

        startup_wall, startup_cpu = start_up()
        print(f"\nwhere a trial's time goes: process start + imports {startup_wall:.2f} s "
              f"({startup_cpu:.2f} CPU-s), paid per trial by pods-*, once by pool-*;")
        from kfp_mlops.data.ingest import read_dataset

        start = time.perf_counter()
        read_dataset(data)
        print(f"  reading the {args.rows:,} rows {time.perf_counter() - start:.2f} s;")
        serial_fits = [r["fits"] for r in runs.get("pool-1", []) if r["fits"]]
        if serial_fits:
            fit_cpu = statistics.median(f["cpu"] for f in serial_fits)
            n = serial_fits[0]["fits"]
            print(f"  the fits {fit_cpu:.1f} CPU-s for {n} fits ({fit_cpu / args.trials:.1f} "
                  f"CPU-s per trial, one OpenMP thread)")
        if args.omp_check:
            w1, c1, wn, cn = omp_check(str(data), cores)
            print(f"one trial, 1 OpenMP thread: {w1:.1f} s wall, {c1:.1f} CPU-s; {cores} "
                  f"threads: {wn:.1f} s wall, {cn:.1f} CPU-s ({w1 / wn:.2f}x)")


if __name__ == "__main__":
    main()
