"""Benchmark batch scoring: ``score_parquet`` vs a plain ``model.predict`` script.

1. Trains the penguins classifier (ColumnTransformer + LogisticRegression), writes it
   as a model folder, and generates a ``--rows`` Parquet file chunk by chunk (penguin
   rows resampled with noise; missing values kept).
2. In fresh subprocesses, side by side, ``--repeats`` times each:
   - ours: ``score_parquet`` (schema check, streaming batches, Parquet output);
   - raw: ``pq.read_table(...).to_pandas()`` then one ``model.predict`` call
     (the plain script; its predict-only time is reported too).
3. Prints medians, the throughput ratio ours/raw (goal >= 0.9x) and peak RSS of each.

Usage: ``python bench/bench_batch.py --rows 10000000`` (quick: ``--rows 1000000``).
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

CHUNK = 1_000_000


def build_model(folder: Path) -> None:
    from palmerpenguins import load_penguins
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from kfp_mlops.model.package import Feature, ModelMetadata, write_model_folder

    data = load_penguins()
    x, y = data.drop(columns=["species"]), data["species"]
    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    categorical = [c for c in x.columns if c not in numeric]
    model = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                        (
                            "cat",
                            make_pipeline(
                                SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore"),
                            ),
                            categorical,
                        ),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    ).fit(x, y)
    features = [
        Feature(c, str(x[c].dtype), "numeric" if c in numeric else "categorical", True)
        for c in x.columns
    ]
    meta = ModelMetadata("classification", "species", features, "LogisticRegression")
    write_model_folder(model, meta, folder)


def generate(path: Path, rows: int, seed: int = 0) -> None:
    from palmerpenguins import load_penguins

    base = load_penguins().drop(columns=["species"])
    rng = np.random.default_rng(seed)
    writer = None
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        chunk = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
        for col in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
            chunk[col] = chunk[col] * rng.normal(1.0, 0.02, n)
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=128 * 1024)
        done += n
    assert writer is not None
    writer.close()


def run_child(mode: str, model_dir: str, data: str, out: str, batch_rows: int) -> None:
    """Run one measurement in this (fresh) process and print JSON."""
    import sklearn.pipeline  # noqa: F401  # imports are not what we measure

    from kfp_mlops.model.package import load_model_folder
    from kfp_mlops.serving.batch import score_parquet

    started = time.perf_counter()  # both sides include loading the model folder
    result: dict[str, float] = {}
    if mode == "ours":
        rows = score_parquet(model_dir, data, out, batch_rows=batch_rows).rows
    else:
        model, meta = load_model_folder(model_dir)
        frame = pq.read_table(data, columns=meta.feature_names).to_pandas()
        predict_start = time.perf_counter()
        predictions = model.predict(frame)
        result["predict_s"] = time.perf_counter() - predict_start
        rows = len(predictions)
    result["seconds"] = time.perf_counter() - started
    result["rows"] = rows
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(mode: str, model_dir: Path, data: Path, out: Path, batch_rows: int) -> dict:
    command = [
        sys.executable, __file__, "--child", mode, "--model-dir", str(model_dir),
        "--data", str(data), "--out", str(out), "--batch-rows", str(batch_rows),
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=262_144)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "raw"])
    parser.add_argument("--model-dir")
    parser.add_argument("--data")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.model_dir, args.data, args.out, args.batch_rows)
        return

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        build_model(work / "model")
        started = time.perf_counter()
        generate(work / "in.parquet", args.rows)
        size_mb = (work / "in.parquet").stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB) in "
              f"{time.perf_counter() - started:.1f}s")  # fmt: skip
        ours, raw = [], []
        for _ in range(args.repeats):  # interleaved so machine noise hits both
            ours.append(measure("ours", work / "model", work / "in.parquet",
                                work / "out.parquet", args.batch_rows))  # fmt: skip
            raw.append(measure("raw", work / "model", work / "in.parquet",
                               work / "out.parquet", args.batch_rows))  # fmt: skip
        med = statistics.median
        ours_s, raw_s = med(r["seconds"] for r in ours), med(r["seconds"] for r in raw)
        predict_s = med(r["predict_s"] for r in raw)
        print(f"rows={args.rows:,} batch_rows={args.batch_rows:,} repeats={args.repeats}")
        print(f"ours  score_parquet     : {ours_s:7.2f}s  {args.rows / ours_s:12,.0f} rows/s  "
              f"peak RSS {max(r['peak_rss_mb'] for r in ours):7.0f} MB")  # fmt: skip
        print(f"raw   read + predict    : {raw_s:7.2f}s  {args.rows / raw_s:12,.0f} rows/s  "
              f"peak RSS {max(r['peak_rss_mb'] for r in raw):7.0f} MB")  # fmt: skip
        print(f"raw   predict only      : {predict_s:7.2f}s  {args.rows / predict_s:12,.0f} rows/s")
        print(f"throughput ratio ours/raw(read+predict) = {raw_s / ours_s:.2f}x (goal >= 0.9x)")
        print(f"throughput ratio ours/raw(predict only) = {predict_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
