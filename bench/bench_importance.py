"""Evaluate's cost against train's on a wide table: permutation importance must stay bounded.

Generates a classification (or regression) table with many numeric columns, a few of
which carry the signal, splits it 80/20, trains the default model with ``train_model`` and
evaluates it with ``evaluate_model(explain=True)`` (what the pipeline's evaluate step runs
for the model card). Prints the wall times, the ratio evaluate/train, and what the
importance measured (columns, rows, repeats, and whether the informative columns lead).
Times are wall and CPU seconds of this process; with OMP_NUM_THREADS=1 the CPU times
are the work done, whatever else runs on the machine, and the ratio of CPU times is the
figure to compare across runs.

    .venv/bin/python bench/bench_importance.py                    # 5,000 rows x 2,000 columns
    .venv/bin/python bench/bench_importance.py --columns 200 --task regression
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd


def generate(rows: int, columns: int, informative: int, task: str, seed: int) -> pd.DataFrame:
    """``columns`` numeric columns x0..; the target depends on x0..x{informative-1} only."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, columns)).astype(np.float64)
    frame = pd.DataFrame(data, columns=[f"x{i}" for i in range(columns)])
    weights = np.linspace(2.0, 0.5, informative)
    score = data[:, :informative] @ weights + rng.normal(scale=0.5, size=rows)
    frame["target"] = np.where(score > 0, "yes", "no") if task == "classification" else score
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--columns", type=int, default=2000)
    parser.add_argument("--informative", type=int, default=5)
    parser.add_argument("--task", choices=["classification", "regression"],
                        default="classification")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    from kfp_mlops.model.evaluate import evaluate_model
    from kfp_mlops.model.train import train_model

    frame = generate(args.rows, args.columns, args.informative, args.task, args.seed)
    test = frame.sample(frac=0.2, random_state=args.seed)
    train = frame.drop(index=test.index)

    def timed(call):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        return result, time.perf_counter() - wall, time.process_time() - cpu

    (model, metadata), train_s, train_cpu = timed(
        lambda: train_model(train, "target", args.task, seed=args.seed))
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
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:30} {value}")


if __name__ == "__main__":
    main()
