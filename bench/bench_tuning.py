"""Tuning fan-out: N trials with dsl.ParallelFor(parallelism=N) vs parallelism=1.

Both sides run side by side in one invocation (alternating, --repeats times each) on
the same generated classification table, as separate kfp.local runs in child
processes. Prints the median wall times, the speed-up and each side's peak RSS (the
largest process in the run's tree), then the same comparison at the core level: the
trials in a process pool vs one after another, without KFP.

    .venv/bin/python bench/bench_tuning.py                 # 50,000 rows, 8 trials
    .venv/bin/python bench/bench_tuning.py --rows 20000 --trials 4 --repeats 3
"""

# No "from __future__ import annotations": KFP reads the component signature at runtime.
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve()


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


def run_pipeline(data: str, trials: int, parallelism: int, runs_dir: str) -> None:
    """Child process: one kfp.local tuning run (candidates -> ParallelFor trials -> best)."""
    import warnings

    from kfp import dsl, local
    from kfp.dsl import Dataset, Output

    from kfp_mlops.components.image import DEFAULT_IMAGE
    from kfp_mlops.components.model.tune import make_candidates, run_trial, select_best

    @dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
    def read_parquet(path: str, dataset: Output[Dataset]):
        import shutil

        shutil.copyfile(path, dataset.path)

    @dsl.pipeline(name="bench-tuning")
    def tuning(path: str, n_trials: int):
        data_task = read_parquet(path=path)
        candidates = make_candidates(task="classification", n_trials=n_trials, seed=0)
        with dsl.ParallelFor(candidates.output, parallelism=parallelism) as params:
            trial = run_trial(train_data=data_task.outputs["dataset"], target="label",
                              task="classification", params=params, cv_folds=3)
        select_best(results=dsl.Collected(trial.output))

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=runs_dir,
               raise_on_error=True)
    tuning(path=data, n_trials=trials)


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of the largest process in ``argv``'s tree."""
    wrapper = (
        "import resource, subprocess, sys, json;"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE);"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(json.dumps([p.returncode, r.ru_maxrss, p.stderr.decode()[-2000:]]))"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True,
                         check=True)
    seconds = time.perf_counter() - start
    code, rss_kib, tail = json.loads(out.stdout)
    if code != 0:
        raise SystemExit(f"run failed ({code}): {argv}\n{tail}")
    return seconds, rss_kib / 1024


def _trial(args: tuple[str, dict]) -> float:
    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model.tuning import run_trial

    path, params = args
    return run_trial(read_dataset(path), "label", "classification", "auto", params, 3, 42).score


def core_level(data: str, trials: int, workers: int) -> tuple[float, float]:
    """Seconds for the trials one after another, and in a pool of ``workers`` processes."""
    from kfp_mlops.model.tuning import make_candidates

    jobs = [(data, p) for p in make_candidates("classification", "auto", "auto", trials, 0)]
    start = time.perf_counter()
    serial = [_trial(j) for j in jobs]
    serial_s = time.perf_counter() - start
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parallel = list(pool.map(_trial, jobs))
    parallel_s = time.perf_counter() - start
    assert serial == parallel, "the same trials must score the same"
    return serial_s, parallel_s


def main() -> None:
    """Run both sides, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-core", action="store_true", help="pipeline comparison only")
    parser.add_argument("--child", nargs=3, metavar=("DATA", "PARALLELISM", "RUNS_DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, parallelism, runs_dir = args.child
        run_pipeline(data, args.trials, int(parallelism), runs_dir)
        return

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench.parquet"
        generate(args.rows, data)
        print(f"{args.rows} rows, {args.trials} trials (3-fold CV, default search space), "
              f"{cores} cores, {args.repeats} repeats per side")
        sides = {1: ([], []), args.trials: ([], [])}
        for repeat in range(args.repeats):
            for parallelism, (seconds, rss) in sides.items():
                runs = Path(tmp) / f"runs-{parallelism}-{repeat}"
                s, m = timed([sys.executable, str(HERE), "--trials", str(args.trials),
                              "--child", str(data), str(parallelism), str(runs)])
                seconds.append(s)
                rss.append(m)
                print(f"  parallelism={parallelism}: {s:.1f} s, peak RSS {m:.0f} MiB", flush=True)
        one = statistics.median(sides[1][0])
        many = statistics.median(sides[args.trials][0])
        print(f"kfp.local pipeline: parallelism=1 {one:.1f} s, parallelism={args.trials} "
              f"{many:.1f} s -> speed-up {one / many:.2f}x "
              f"(peak RSS {max(sides[1][1]):.0f} vs {max(sides[args.trials][1]):.0f} MiB)")
        if not args.skip_core:
            serial_s, parallel_s = core_level(str(data), args.trials, cores)
            print(f"core (no KFP): serial {serial_s:.1f} s, {cores} processes "
                  f"{parallel_s:.1f} s -> speed-up {serial_s / parallel_s:.2f}x")


if __name__ == "__main__":
    main()
