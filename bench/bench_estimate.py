"""Performance estimation without labels: the suite's CBPE and DLE against NannyML's.

Both sides estimate the same model on the same data: a reference set (held-out rows
the model never saw, with labels) and analysis chunks without labels, some drawn from
the training world and some with a known covariate shift that changes how well the
model does (the link from inputs to label stays, which is what CBPE and DLE assume).
After the estimates, the labels are joined and the realized metric computed per chunk.
The bench prints, per metric, each side's mean absolute error against the realized
value, and the time each took to fit on the reference and estimate the chunks (from the
same model outputs: probabilities, or predictions and inputs; neither side's time
includes the model's own predict).

Scenarios (generated; nothing is downloaded at run time):
- binary: 6 inputs, the label from a logistic link with interactions; the shift narrows
  x0's spread and moves x1 (rows crowd where the label is least certain).
- multiclass: 3 classes, a softmax link; the same kind of shift.
- regression: 6 inputs, noise whose size depends on x0; the shift moves x0 where the
  noise is larger (a constant-error estimate would miss it).

NannyML runs in its own venv (bench/.venv-nannyml, created on first use with
``pip install nannyml==0.13.1 statsmodels``): its pins (pandas, scikit-learn, lightgbm, ...) are
not the suite's. Run::

    .venv/bin/python bench/bench_estimate.py            # all scenarios, 3 repeats
    .venv/bin/python bench/bench_estimate.py --quick    # one repeat, smaller chunks
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
NANNY_VENV = HERE / ".venv-nannyml"
NANNY_PIN = ("nannyml==0.13.1", "statsmodels")  # its plots import statsmodels, not declared
SHIFTS = (0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0)  # one analysis chunk each


def nanny_python(path: str | None) -> Path:
    """NannyML's Python: the given one, or bench/.venv-nannyml (created if missing)."""
    if path:
        return Path(path)
    python = NANNY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {NANNY_VENV} with {NANNY_PIN} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(NANNY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *NANNY_PIN], check=True)
    return python


def inputs(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    x = rng.normal(size=(n, 6))
    x[:, 0] *= 1.0 - 0.7 * shift
    x[:, 1] += 0.8 * shift
    return x


def binary(rng, n, shift):
    x = inputs(rng, n, shift)
    logit = 2.0 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + 0.5 * x[:, 4] ** 2 - 0.5
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def multiclass(rng, n, shift):
    x = inputs(rng, n, shift)
    scores = np.column_stack([2.0 * x[:, 0] + x[:, 2], -x[:, 0] + x[:, 1] * x[:, 3],
                              0.8 * x[:, 1] - x[:, 4]])
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random((n, 1)) > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)
    return x, y


def regression(rng, n, shift):
    x = inputs(rng, n, 0.0)
    x[:, 0] += 1.5 * shift
    noise = rng.normal(size=n) * (0.3 + 0.6 * np.abs(x[:, 0]))
    return x, 3 * x[:, 0] + np.sin(2 * x[:, 1]) + x[:, 2] * x[:, 3] + noise


SCENARIOS = {"binary": binary, "multiclass": multiclass, "regression": regression}
FEATURES = [f"x{i}" for i in range(6)]


def realized(kind: str, y: np.ndarray, proba: np.ndarray | None, predicted: np.ndarray
             ) -> dict[str, float]:
    from sklearn import metrics as skm

    if kind == "regression":
        return {"mae": skm.mean_absolute_error(y, predicted),
                "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted)))}
    out = {"accuracy": skm.accuracy_score(y, predicted),
           "f1_macro": skm.f1_score(y, predicted, average="macro")}
    if kind == "binary":
        out["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
    return out


# The suite's metric -> NannyML's name for the same figure.
NANNY_NAMES = {"binary": {"accuracy": "accuracy", "roc_auc": "roc_auc"},
               "multiclass": {"accuracy": "accuracy", "f1_macro": "f1"},
               "regression": {"mae": "mae", "rmse": "rmse"}}


def run_scenario(kind: str, python: Path, train_rows: int, reference_rows: int,
                 chunk_rows: int, seed: int, workdir: Path) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from kfp_mlops.model import estimate

    rng = np.random.default_rng(seed)
    make = SCENARIOS[kind]
    x_train, y_train = make(rng, train_rows, 0.0)
    x_ref, y_ref = make(rng, reference_rows, 0.0)
    chunks = [make(rng, chunk_rows, s) for s in SHIFTS]
    regress = kind == "regression"
    model = (HistGradientBoostingRegressor(random_state=seed) if regress
             else HistGradientBoostingClassifier(random_state=seed)).fit(x_train, y_train)

    def outputs(x):
        if regress:
            return None, model.predict(x)
        proba = model.predict_proba(x)
        return proba, proba.argmax(axis=1)

    ref_proba, ref_pred = outputs(x_ref)
    analysed = [outputs(x) for x, _ in chunks]
    truth = [realized(kind, y, p, pred) for (_, y), (p, pred) in zip(chunks, analysed,
                                                                   strict=True)]
    # The suite: fit on the reference, estimate every chunk (from the same outputs). Its
    # imports are warm, as NannyML's are (its import is timed apart).
    import sklearn.isotonic  # noqa: F401
    import sklearn.tree  # noqa: F401

    begin = time.perf_counter()
    if regress:
        frame = lambda x: pd.DataFrame(x, columns=FEATURES)  # noqa: E731
        fitted = estimate.fit_dle(frame(x_ref), ref_pred, y_ref, FEATURES, seed)
        ours = [estimate.estimate_dle(frame(x), pred, fitted)
                for (x, _), (_, pred) in zip(chunks, analysed, strict=True)]
    else:
        labels = [str(c) for c in model.classes_]
        fitted = estimate.fit_cbpe(ref_proba, y_ref.astype(str), labels, seed)
        ours = [estimate.estimate_cbpe(p, fitted["calibrators"], seed) for p, _ in analysed]
    suite_seconds = time.perf_counter() - begin

    # NannyML: the same reference and chunks, as a DataFrame each.
    def table(x, y, proba, pred):
        data = pd.DataFrame(x, columns=FEATURES)
        data["y"], data["y_pred"] = y, pred
        if kind == "binary":
            data["p1"] = proba[:, 1]
        elif kind == "multiclass":
            for k in range(proba.shape[1]):
                data[f"p{k}"] = proba[:, k]
        return data

    table(x_ref, y_ref, ref_proba, ref_pred).to_parquet(workdir / "reference.parquet")
    pd.concat([table(x, y, p, pred).drop(columns="y") for (x, y), (p, pred)
               in zip(chunks, analysed, strict=True)], ignore_index=True
              ).to_parquet(workdir / "analysis.parquet")
    names = NANNY_NAMES[kind]
    spec = {"reference": str(workdir / "reference.parquet"),
            "analysis": str(workdir / "analysis.parquet"), "chunk_size": chunk_rows,
            "metrics": list(names.values()), "features": FEATURES,
            "problem": {"binary": "classification_binary",
                        "multiclass": "classification_multiclass"}.get(kind, "regression"),
            "proba": "p1" if kind == "binary" else {str(k): f"p{k}" for k in range(3)}}
    (workdir / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([str(python), str(HERE / "nannyml_runner.py"),
                           str(workdir / "spec.json")], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"NannyML failed:\n{done.stderr[-3000:]}")
    nanny = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for metric, theirs in names.items():
        for i, shift in enumerate(SHIFTS):
            rows.append({"scenario": kind, "seed": seed, "shift": shift, "metric": metric,
                         "realized": float(truth[i][metric]),
                         "suite": float(ours[i].metrics[metric]),
                         "suite_band": float(ours[i].band[metric]),
                         "nannyml": float(nanny["estimates"][theirs][i])})
    return {"rows": rows, "suite_seconds": suite_seconds,
            "nannyml_seconds": nanny["fit_seconds"] + nanny["estimate_seconds"],
            "nannyml_import_seconds": nanny["import_seconds"], "nannyml": nanny["version"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="binary,multiclass,regression")
    parser.add_argument("--repeats", type=int, default=3, help="seeds per scenario")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--reference-rows", type=int, default=5_000)
    parser.add_argument("--chunk-rows", type=int, default=2_000)
    parser.add_argument("--nannyml-python", help="a Python with nannyml installed "
                        f"(default: {NANNY_VENV}, created if missing)")
    parser.add_argument("--quick", action="store_true", help="one seed, 1,000-row chunks")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.chunk_rows = 1, 1000
    python = nanny_python(args.nannyml_python)
    print(f"load average before: {os.getloadavg()}", flush=True)
    rows, timing = [], []
    for kind in args.scenarios.split(","):
        for seed in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                found = run_scenario(kind, python, args.train_rows, args.reference_rows,
                                     args.chunk_rows, seed, Path(tmp))
            rows += found["rows"]
            timing.append({"scenario": kind, "suite": found["suite_seconds"],
                           "nannyml": found["nannyml_seconds"],
                           "nannyml_import": found["nannyml_import_seconds"]})
            print(f"{kind} seed {seed}: suite {found['suite_seconds']:.3f} s, NannyML "
                  f"{found['nannyml']} {found['nannyml_seconds']:.3f} s (+ import "
                  f"{found['nannyml_import_seconds']:.1f} s)", flush=True)
    frame = pd.DataFrame(rows)
    frame["suite_error"] = (frame["suite"] - frame["realized"]).abs()
    frame["nannyml_error"] = (frame["nannyml"] - frame["realized"]).abs()
    frame["in_band"] = frame["suite_error"] <= frame["suite_band"]
    print("\nPer chunk (realized after the labels are joined), first seed:")
    first = frame[frame["seed"] == 0]
    print(first[["scenario", "metric", "shift", "realized", "suite", "suite_band", "nannyml"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nMean absolute error of the estimate against the realized metric:")
    summary = frame.groupby(["scenario", "metric"]).agg(
        suite=("suite_error", "mean"), nannyml=("nannyml_error", "mean"),
        suite_band_coverage=("in_band", "mean"), chunks=("in_band", "size"))
    # Both run the same method for CBPE (isotonic calibration on the reference): their
    # estimates agree to float precision, so "at least as close" allows 1e-4.
    summary["suite_at_least_as_close"] = summary["suite"] <= summary["nannyml"] + 1e-4
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    times = pd.DataFrame(timing).groupby("scenario").median()
    times["ratio"] = times["nannyml"] / times["suite"]
    print("\nMedian seconds to fit on the reference and estimate the "
          f"{len(SHIFTS)} chunks (NannyML's import apart):")
    print(times.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"\nload average after: {os.getloadavg()}")
    verdict = bool(summary["suite_at_least_as_close"].all())
    print(f"suite at least as close as NannyML on every scenario and metric: {verdict}")


if __name__ == "__main__":
    main()
