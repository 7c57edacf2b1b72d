"""Evaluate's cost against train's on a wide table: permutation importance must stay bounded.

Generates a classification (or regression) table with many numeric columns, a few of
which carry the signal, splits it 80/20, trains the default model with ``train_model`` and
evaluates it with ``evaluate_model(explain=True)`` (what the pipeline's evaluate step runs
for the model card). Prints the wall times, the ratio evaluate/train, and what the
importance measured (columns, rows, repeats, and whether the informative columns lead).
Times are wall and CPU seconds of this process; with OMP_NUM_THREADS=1 the CPU times
are the work done, whatever else runs on the machine, and the ratio of CPU times is the
figure to compare across runs.

With ``--cli`` the table is written as a CSV and trained by a real pipeline run,
``kfp-mlops run --data CSV --target target`` (kfp.local, a temporary store), and the
ratio is that of the train and evaluate tasks' wall times (``task_seconds`` of
``--output json``): what a user meets, with the tasks' default threads. ``--classes N``
makes a classification target of N classes (bins of the score), ``--rare R`` of which
hold 2 to 5 rows each: the many-classes case.

    .venv/bin/python bench/bench_importance.py                    # 5,000 rows x 2,000 columns
    .venv/bin/python bench/bench_importance.py --columns 200 --task regression
    .venv/bin/python bench/bench_importance.py --cli --rows 2000  # through kfp-mlops run
    .venv/bin/python bench/bench_importance.py --cli --rows 3000 --columns 20 --classes 60 --rare 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def generate(rows: int, columns: int, informative: int, task: str, seed: int,
             classes: int = 2, rare: int = 0) -> pd.DataFrame:
    """``columns`` numeric columns x0..; the target depends on x0..x{informative-1} only.

    With ``classes`` > 2, the classes are equal-count bins of the score, but for ``rare``
    classes that take 2 to 5 random rows each.
    """
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, columns)).astype(np.float64)
    frame = pd.DataFrame(data, columns=[f"x{i}" for i in range(columns)])
    weights = np.linspace(2.0, 0.5, informative)
    score = data[:, :informative] @ weights + rng.normal(scale=0.5, size=rows)
    if task == "regression":
        frame["target"] = score
    elif classes <= 2:
        frame["target"] = np.where(score > 0, "yes", "no")
    else:
        common = classes - rare
        bins = np.quantile(score, np.linspace(0, 1, common + 1)[1:-1])
        labels = np.array([f"c{i:03d}" for i in np.searchsorted(bins, score)], dtype=object)
        taken = rng.permutation(rows)[: sum(2 + i % 4 for i in range(rare))]
        sizes = np.cumsum([0] + [2 + i % 4 for i in range(rare)])
        for i in range(rare):
            labels[taken[sizes[i]:sizes[i + 1]]] = f"rare{i:02d}"
        frame["target"] = labels
    return frame


def through_cli(frame: pd.DataFrame, extra: list[str]) -> dict:
    """Train ``frame`` with a real ``kfp-mlops run``; its train and evaluate task times."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.csv"
        frame.to_csv(path, index=False)
        command = [str(Path(sys.executable).with_name("kfp-mlops")), "run", "--data", str(path),
                   "--target", "target", "--store", f"{tmp}/store", "--runs-dir",
                   f"{tmp}/runs", "--output", "json", *extra]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 3):
            raise SystemExit(f"kfp-mlops run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        summary = json.loads(done.stdout)
        seconds = summary["task_seconds"]
        return {
            "rows": len(frame), "columns": frame.shape[1] - 1,
            "classes": int(frame["target"].nunique()), "extra_args": " ".join(extra),
            "run_s": round(time.perf_counter() - started, 1),
            "train_task_s": seconds["train"], "evaluate_task_s": seconds["evaluate"],
            "ratio_evaluate_over_train": round(seconds["evaluate"] / seconds["train"], 2),
            "metrics": summary.get("metrics"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--columns", type=int, default=2000)
    parser.add_argument("--informative", type=int, default=5)
    parser.add_argument("--task", choices=["classification", "regression"],
                        default="classification")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--rare", type=int, default=0, help="classes of 2 to 5 rows each")
    parser.add_argument("--cli", action="store_true",
                        help="train through kfp-mlops run (kfp.local) and time its tasks")
    parser.add_argument("--run-args", default="",
                        help="more kfp-mlops run arguments, split like a shell line, e.g. "
                             "\"--params '{\\\"max_iter\\\": 100}'\"")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    frame = generate(args.rows, args.columns, args.informative, args.task, args.seed,
                     args.classes, args.rare)
    if args.cli:
        import shlex

        show(through_cli(frame, shlex.split(args.run_args)), args.json)
        return

    from kfp_mlops.model.evaluate import evaluate_model
    from kfp_mlops.model.settings import TrainingSettings
    from kfp_mlops.model.train import train_model

    test = frame.sample(frac=0.2, random_state=args.seed)
    train = frame.drop(index=test.index)

    def timed(call):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        return result, time.perf_counter() - wall, time.process_time() - cpu

    (model, metadata), train_s, train_cpu = timed(
        lambda: train_model(train, TrainingSettings.from_parameters(
            target="target", task=args.task, seed=args.seed)))
    _, metrics_s, metrics_cpu = timed(lambda: evaluate_model(model, metadata, test))
    evaluation, explain_s, explain_cpu = timed(
        lambda: evaluate_model(model, metadata, test, explain=True, seed=args.seed))

    importance = evaluation.importance or {}
    means = np.asarray(importance.get("mean", []))
    names = importance.get("columns", [])
    top = [names[i] for i in np.argsort(means)[::-1][: args.informative]]
    informative = {f"x{i}" for i in range(args.informative)}
    result = {
        "rows": args.rows, "columns": args.columns, "task": args.task,
        "train_s": round(train_s, 2), "evaluate_metrics_only_s": round(metrics_s, 2),
        "evaluate_explain_s": round(explain_s, 2),
        "ratio_evaluate_over_train": round(explain_s / train_s, 2),
        "train_cpu_s": round(train_cpu, 2), "evaluate_metrics_only_cpu_s": round(metrics_cpu, 2),
        "evaluate_explain_cpu_s": round(explain_cpu, 2),
        "ratio_evaluate_over_train_cpu": round(explain_cpu / train_cpu, 2),
        "importance_columns_measured": len(names),
        "importance_rows": importance.get("rows"), "importance_repeats": importance.get("repeats"),
        "importance_note": importance.get("note", ""),
        "top_columns": top, "informative_found": len(informative & set(top)),
    }
    show(result, args.json)


def show(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:30} {value}")


if __name__ == "__main__":
    main()
