"""NannyML's side of bench/bench_estimate.py; run by its own venv's Python, not the suite's.

Reads the spec JSON named on the command line (reference and analysis Parquet files,
the column names, the chunk size), fits CBPE (classification) or DLE (regression) on the
reference, estimates every analysis chunk, and prints one JSON object: the estimates per
chunk and the seconds fit and estimate took (the import is timed apart).
"""

import json
import sys
import time

started = time.perf_counter()
import nannyml as nml  # noqa: E402
import pandas as pd  # noqa: E402

imported = time.perf_counter() - started


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    reference = pd.read_parquet(spec["reference"])
    analysis = pd.read_parquet(spec["analysis"])
    metrics = spec["metrics"]
    chunk = spec["chunk_size"]
    begin = time.perf_counter()
    if spec["problem"] == "regression":
        estimator = nml.DLE(
            feature_column_names=spec["features"], y_pred="y_pred", y_true="y",
            metrics=metrics, chunk_size=chunk,
        )
    else:
        proba = spec["proba"]
        estimator = nml.CBPE(
            y_pred_proba=proba if isinstance(proba, str) else dict(proba), y_pred="y_pred",
            y_true="y", problem_type=spec["problem"], metrics=metrics, chunk_size=chunk,
        )
    estimator.fit(reference)
    fitted = time.perf_counter()
    result = estimator.estimate(analysis)
    done = time.perf_counter()
    frame = result.filter(period="analysis").to_df()
    out = {name: [float(v) for v in frame[(name, "value")]] for name in metrics}
    print(json.dumps({"estimates": out, "fit_seconds": fitted - begin,
                      "estimate_seconds": done - fitted, "import_seconds": imported,
                      "version": nml.__version__}))


if __name__ == "__main__":
    main()
