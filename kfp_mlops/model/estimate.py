"""Performance before the labels arrive: CBPE for classifiers, DLE for regressors.

Production batches carry no labels; they come days or months later. Drift says the
inputs moved, not whether the model got worse. Two estimators, both after NannyML's
(https://nannyml.readthedocs.io, "Performance Estimation"), say how well the model does
on a batch from the batch alone:

- **CBPE** (confidence-based performance estimation), for classifiers with
  ``predict_proba``: a *calibrated* probability is the chance the row belongs to the
  class, so the expected confusion matrix of the model's predictions is the sum of the
  rows' calibrated probabilities, by predicted class. Accuracy, balanced accuracy,
  macro F1, precision and recall follow from it; for binary targets ROC AUC too (the
  expected share of positive-negative pairs ranked right). The calibration is fitted on
  the held-out test rows at training time (:func:`fit_estimator`, called by the
  ``evaluate`` step) and stored in the model version's metadata
  (``performance_estimator``). Isotonic regression per class, kept only where it lowers
  the expected calibration error on rows it was not fitted on (NannyML's
  ``needs_calibration`` test), since a few hundred rows can make it worse.
- **DLE** (direct loss estimation), for regressors: two small gradient-boosted tree
  ensembles, fitted on the held-out rows, map the model's prediction and numeric inputs
  to the expected absolute and squared error of that row. Their means over the batch
  estimate MAE and MSE (RMSE; the squared-error model's row estimate is averaged with
  the |error| model's, squared and scaled, which is less noisy). The trees are stored
  as plain arrays, so the metadata stays JSON (about 50 kB).

Every estimate has a band: the half-width of a 95% interval of the metric the labels
will give, from the batch's size (the realized metric of ``n`` rows scatters around its
expectation even when the estimate is right). For CBPE it is a parametric bootstrap
(labels drawn from the calibrated probabilities); for DLE the per-row variances from
the expected squared error and the residuals' shape on the held-out rows. What the
band does not hold: error in the calibration itself and concept drift (the same inputs
now meaning another label), which no label-free estimate can see.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kfp_mlops.data.kinds import NUMERIC
from kfp_mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from kfp_mlops.model.package import ModelMetadata

CBPE, DLE, NONE = "cbpe", "dle", "none"
Z95 = 1.959964  # the band is this many standard errors: a 95% interval
BOOTSTRAP_DRAWS = 100  # label draws of the parametric bootstrap (a seeded RNG)
BOOTSTRAP_ROWS = 1000  # rows a draw holds at most; the band is scaled to the batch's size
CALIBRATION_SPLITS = 10
MIN_CALIBRATION_ROWS = 40  # fewer held-out rows: the raw probabilities are used
# The primary metric of each task: what the summary line and the --estimated-drop
# decision read. For an error metric a drop is a rise, measured relative to the
# reference (0.05: 5% worse).
PRIMARY = {"classification": "accuracy", "regression": "mae"}
LOWER_IS_BETTER = frozenset({"mae", "rmse", "log_loss"})


@dataclass
class Estimate:
    """Estimated metrics of a batch, their 95% bands, and how they were made."""

    method: str  # cbpe, dle, or none (the model cannot support an estimate)
    rows: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    band: dict[str, float] = field(default_factory=dict)  # half-width of the 95% interval
    note: str = ""  # how it was made, or why there is none

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Estimate | None:
        """Read :meth:`to_dict`'s output (None stays None), ignoring unknown keys."""
        if not raw:
            return None
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def describe(self, metric: str) -> str:
        """``estimated accuracy 0.91 +/- 0.02`` (or why there is no estimate)."""
        if metric not in self.metrics:
            return f"no estimate ({self.note})" if self.note else "no estimate"
        return f"estimated {metric} {self.metrics[metric]:.3g} +/- {self.band.get(metric, 0):.2g}"


# ---------------------------------------------------------------- fitting (training time)


def fit_estimator(model: Any, metadata: ModelMetadata, frame: pd.DataFrame, seed: int = 0
                  ) -> dict[str, Any]:
    """What estimates this model's performance later, fitted on held-out rows ``frame``.

    A JSON-ready dict for ``ModelMetadata.performance_estimator``. A classifier without
    ``predict_proba`` gets ``{"method": "none", "reason": ...}``: that is said, not hidden.
    """
    from kfp_mlops.model.features import class_labels, model_inputs

    if metadata.target not in frame.columns:
        raise DataError(f"the held-out rows have no target column {metadata.target!r}")
    labelled = frame[frame[metadata.target].notna()]
    inputs = model_inputs(labelled, metadata)
    if metadata.task == "classification":
        if not hasattr(model, "predict_proba"):
            return {"method": NONE, "reason": _NO_PROBA}
        labels = [str(c) for c in model.classes_]
        y = class_labels(labelled[metadata.target]).to_numpy()
        proba = np.asarray(model.predict_proba(inputs), dtype=float)
        return fit_cbpe(proba, y, labels, seed)
    y = labelled[metadata.target].astype(float).to_numpy()
    predicted = np.asarray(model.predict(inputs), dtype=float)
    return fit_dle(inputs, predicted, y, [f.name for f in metadata.features
                                          if f.kind == NUMERIC], seed)


_NO_PROBA = ("the estimator gives no probabilities (no predict_proba), so its performance "
             "cannot be estimated before the labels arrive; use a classifier with "
             "predict_proba (or CalibratedClassifierCV around this one) for an estimate")


def fit_cbpe(proba: np.ndarray, y: np.ndarray, labels: list[str], seed: int = 0
             ) -> dict[str, Any]:
    """The CBPE estimator from held-out probabilities ``proba`` and true labels ``y``."""
    return {"method": CBPE, "classes": list(labels), "rows": len(y),
            "calibrators": _fit_calibrators(proba, np.asarray(y).astype(str), labels, seed)}


def _fit_calibrators(proba: np.ndarray, y: np.ndarray, labels: list[str], seed: int
                     ) -> list[dict[str, list[float]] | None]:
    """Per class: isotonic knots, or None where the raw probability is as good.

    Binary targets calibrate the second class only (the first is its complement).
    """
    classes = [1] if len(labels) == 2 else range(len(labels))
    out: list[dict[str, list[float]] | None] = [None] * len(labels)
    for k in classes:
        positive = (y == labels[k]).astype(float)
        if len(y) < MIN_CALIBRATION_ROWS or positive.min() == positive.max():
            continue
        if _calibration_helps(proba[:, k], positive, seed):
            out[k] = _isotonic(proba[:, k], positive)
    return out


def _isotonic(score: np.ndarray, positive: np.ndarray) -> dict[str, list[float]]:
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, positive)
    return {"x": [float(v) for v in fitted.X_thresholds_],
            "y": [float(v) for v in fitted.y_thresholds_]}


def _calibration_error(score: np.ndarray, positive: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of ``score``.

    The gap between the mean probability and the share of positives, bin by bin,
    weighted by the bin's rows: exactly what CBPE relies on (a Brier score would also
    reward sharper probabilities, which CBPE does not need).
    """
    n = len(score)
    bins = bins if n > 2 * bins else max(n // 2, 1)
    edges = np.arange(0, n + 1, max(n // bins, 1))
    edges[-1] = n  # the last bin takes the remainder, as NannyML's bins do
    order = np.argsort(score)
    parts = [order[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    return float(sum(abs(score[part].mean() - positive[part].mean()) * len(part)
                     for part in parts) / n)


def _calibration_helps(score: np.ndarray, positive: np.ndarray, seed: int) -> bool:
    """Whether isotonic calibration lowers the calibration error on rows it was not fitted on.

    NannyML's ``needs_calibration`` test, as it runs it: 10 stratified shuffle splits
    holding out 10% each, the held-out probabilities pooled, raw against calibrated
    (the held-out rows are few, and a calibrator fitted on a few hundred rows can be
    worse than none). ``seed`` does not enter: the splits are fixed, as NannyML's are.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    if len(np.unique(positive)) < 2 or min(np.bincount(positive.astype(int))) < 2:
        return False
    splits = StratifiedShuffleSplit(n_splits=CALIBRATION_SPLITS, test_size=0.1,
                                    random_state=42)
    raw, mapped, truth = [], [], []
    for train, test in splits.split(score, positive):
        knots = _isotonic(score[train], positive[train])
        raw.append(score[test])
        mapped.append(np.interp(score[test], knots["x"], knots["y"]))
        truth.append(positive[test])
    truth_all = np.concatenate(truth)
    return (_calibration_error(np.concatenate(mapped), truth_all)
            < _calibration_error(np.concatenate(raw), truth_all))


def _dle_inputs(inputs: pd.DataFrame, predicted: np.ndarray, names: list[str],
                fill: list[float]) -> np.ndarray:
    columns = [predicted]
    for name, value in zip(names, fill, strict=True):
        column = inputs[name].to_numpy(dtype=float, na_value=np.nan)
        columns.append(np.where(np.isfinite(column), column, value))
    return np.column_stack(columns)


def fit_dle(inputs: pd.DataFrame, predicted: np.ndarray, y: np.ndarray, names: list[str],
            seed: int = 0) -> dict[str, Any]:
    """Loss models from (prediction, numeric inputs ``names``) to |error| and error^2.

    Fitted on held-out rows, so the errors are those of rows the model never saw: two
    small gradient-boosted tree ensembles (scikit-learn's HistGradientBoostingRegressor,
    DLE_TREES trees of DLE_LEAVES leaves), stored as plain arrays. The residuals' shape on the
    same rows (kurtosis, and how |error| relates to error^2) gives the band.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    fill = []
    for name in names:
        values = inputs[name].to_numpy(dtype=float, na_value=np.nan)
        finite = values[np.isfinite(values)]
        fill.append(float(np.median(finite)) if len(finite) else 0.0)
    x = _dle_inputs(inputs, predicted, names, fill)
    error = np.abs(np.asarray(y, dtype=float) - predicted)
    models = {}
    for key, target in (("absolute", error), ("squared", error ** 2)):
        # One thread: on a few thousand rows OpenMP's threads cost more than they save,
        # and on a busy machine they wait on each other (a 0.07 s fit took 0.5-2 s).
        with threadpool_limits(1):
            fitted = HistGradientBoostingRegressor(
                max_iter=DLE_TREES, max_leaf_nodes=DLE_LEAVES, learning_rate=DLE_RATE,
                early_stopping=False, random_state=seed,
                min_samples_leaf=max(DLE_MIN_LEAF, len(y) // 500)).fit(x, target)
        models[key] = {"init": float(np.ravel(fitted._baseline_prediction)[0]), "rate": 1.0,
                       "trees": [_hist_tree_arrays(t[0].nodes) for t in fitted._predictors]}
    second = float(np.mean(error ** 2))
    expected = np.maximum(_ensemble(x, models["absolute"]), 0.0) ** 2
    shape = {"kurtosis": float(np.mean(error ** 4) / second ** 2) if second > 0 else 3.0,
             "ratio": float(np.mean(error) ** 2 / second) if second > 0 else 2 / math.pi,
             # E[e^2] / E[(expected |e|)^2] on these rows: turns the |error| model into a
             # second, less noisy estimate of the squared error (see estimate_dle).
             "square": float(second / np.mean(expected)) if np.mean(expected) > 0 else 0.0}
    return {"method": DLE, "rows": len(y), "inputs": names, "fill": fill, "models": models,
            "shape": shape}


# 30 trees of 12 leaves at rate 0.2, leaves of at least 10 rows (or 0.2% of the rows):
# on the bench's regression scenario (7 seeds) closer to the realized MAE and RMSE than
# 100 trees of 8 leaves at 0.1 with 1% leaves, and a third of the time. Small leaves
# matter: a shifted batch lands in the tails of the held-out rows, where large leaves
# average the larger errors away.
DLE_TREES = 30
DLE_LEAVES = 12
DLE_RATE = 0.2
DLE_MIN_LEAF = 10


def _hist_tree_arrays(nodes: np.ndarray) -> dict[str, list]:
    """A fitted HistGradientBoosting tree (its ``nodes`` record array) as JSON arrays.

    The leaf values already hold the learning rate; the inputs are filled (no missing
    values), so a row goes left when its value is at most the threshold, as there.
    """
    leaf = nodes["is_leaf"].astype(bool)
    return {"feature": nodes["feature_idx"].astype(int).tolist(),
            "left": np.where(leaf, -1, nodes["left"].astype(np.int64)).tolist(),
            "right": np.where(leaf, -1, nodes["right"].astype(np.int64)).tolist(),
            # Thresholds in full: rounded ones sent rows near a split the other way.
            "threshold": [float(v) for v in nodes["num_threshold"]],
            "value": [float(f"{v:.6g}") for v in nodes["value"]]}


def _tree_arrays(tree: Any) -> dict[str, list]:
    """A fitted scikit-learn tree as JSON-ready arrays (6 significant digits)."""
    return {"feature": tree.feature.tolist(), "left": tree.children_left.tolist(),
            "right": tree.children_right.tolist(),
            "threshold": [float(f"{v:.6g}") for v in tree.threshold],
            "value": [float(f"{v:.6g}") for v in tree.value[:, 0, 0]]}


# ---------------------------------------------------------------- estimating (monitor time)


def estimate_performance(
    model: Any, metadata: ModelMetadata, frame: pd.DataFrame,
    estimator: dict[str, Any] | None = None, seed: int = 0,
) -> Estimate:
    """The model's estimated metrics on ``frame`` (labels not needed; ignored if present).

    ``estimator`` is the version's stored :func:`fit_estimator` output (default:
    ``metadata.performance_estimator``). A classifier version published before
    estimators were stored is estimated from its raw probabilities, and the note says so.
    """
    from kfp_mlops.model.features import model_inputs

    estimator = estimator if estimator is not None else getattr(
        metadata, "performance_estimator", None)
    if estimator and estimator.get("method") == NONE:
        return Estimate(NONE, len(frame), note=estimator.get("reason", ""))
    if not len(frame):
        return Estimate(NONE, 0, note="the batch has no rows")
    inputs = model_inputs(frame, metadata)
    if metadata.task == "classification":
        if not hasattr(model, "predict_proba"):
            return Estimate(NONE, len(frame), note=_NO_PROBA)
        proba = np.asarray(model.predict_proba(inputs), dtype=float)
        calibrators = (estimator or {}).get("calibrators")
        note = "CBPE on probabilities calibrated on the held-out rows at training time"
        if not estimator:
            calibrators = None
            note = ("CBPE on the raw probabilities: this version stores no calibration "
                    "(published before kfp-mlops stored one; retrain to store it)")
        return estimate_cbpe(proba, calibrators, seed, note)
    if not estimator or estimator.get("method") != DLE:
        return Estimate(NONE, len(frame), note=(
            "this version stores no loss model (published before kfp-mlops stored one); "
            "retrain it to estimate MAE and RMSE before the labels arrive"))
    predicted = np.asarray(model.predict(inputs), dtype=float)
    return estimate_dle(inputs, predicted, estimator)


def calibrated(proba: np.ndarray, calibrators: list[dict[str, list[float]] | None] | None
               ) -> np.ndarray:
    """``proba`` mapped through the stored calibrators, rows summing to one."""
    out = proba.copy()
    if calibrators:
        for k, knots in enumerate(calibrators):
            if knots is not None:
                out[:, k] = np.interp(proba[:, k], knots["x"], knots["y"])
    if out.shape[1] == 2:
        out[:, 0] = 1.0 - out[:, 1]
        return out
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1.0 / out.shape[1]), where=total > 0)


def expected_metrics(p: np.ndarray, predicted: np.ndarray, score: np.ndarray | None
                     ) -> dict[str, float]:
    """Metrics of the expected confusion matrix (rows: true class, columns: predicted).

    ``p`` holds calibrated probabilities (rows x classes), ``predicted`` the predicted
    class codes, ``score`` the positive class's score that ranks rows (binary only).
    """
    k = p.shape[1]
    matrix = np.zeros((k, k))
    for j in range(k):
        matrix[:, j] = p[predicted == j].sum(axis=0)
    return _matrix_metrics(matrix, None if score is None else _expected_auc(score, p[:, 1]))


def _matrix_metrics(matrix: np.ndarray, auc: float | None) -> dict[str, float]:
    metrics = {k: float(v[0]) for k, v in _batch_metrics(matrix[None]).items()}
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _batch_metrics(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, macro F1/precision/recall of each (true x predicted) matrix."""
    diagonal = np.diagonal(matrices, axis1=1, axis2=2)
    true, chosen = matrices.sum(axis=2), matrices.sum(axis=1)
    present = true > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(present, diagonal / true, 0.0)
        precision = np.where(chosen > 0, diagonal / chosen, 0.0)
        f1 = np.where(true + chosen > 0, 2 * diagonal / (true + chosen), 0.0)
        balanced = np.where(present.any(axis=1),
                            recall.sum(axis=1) / np.maximum(present.sum(axis=1), 1), 0.0)
    return {
        "accuracy": diagonal.sum(axis=1) / matrices.sum(axis=(1, 2)),
        "balanced_accuracy": balanced,
        "f1_macro": f1.mean(axis=1),
        "precision_macro": precision.mean(axis=1),
        "recall_macro": recall.mean(axis=1),
    }


def _expected_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Expected ROC AUC: pairs (positive, negative) weighted by their probabilities.

    ``positive`` is each row's chance to be positive (calibrated, or a 0/1 label);
    ties in ``score`` count a half, as ``roc_auc_score`` counts them.
    """
    order = np.argsort(score, kind="mergesort")
    s, pos = score[order], positive[order]
    neg = 1.0 - pos
    starts = np.flatnonzero(np.r_[True, np.diff(s) != 0])
    pos_mass = np.add.reduceat(pos, starts)
    neg_mass = np.add.reduceat(neg, starts)
    below = np.cumsum(neg_mass) - neg_mass
    total = pos.sum() * neg.sum()
    if total <= 0:
        return float("nan")
    return float((pos_mass * (below + 0.5 * neg_mass)).sum() / total)


def estimate_cbpe(proba: np.ndarray, calibrators: list | None, seed: int = 0, note: str = ""
                  ) -> Estimate:
    """CBPE from a batch's probabilities and the stored calibrators (None: raw)."""
    p = calibrated(proba, calibrators)
    predicted = proba.argmax(axis=1)  # what the model answers (predict is predict_proba's argmax)
    binary = proba.shape[1] == 2
    score = proba[:, 1] if binary else None
    metrics = expected_metrics(p, predicted, score)
    band = _bootstrap_band(p, predicted, score, seed)
    return Estimate(CBPE, len(p), {k: round(v, 6) for k, v in metrics.items()},
                    {k: round(v, 6) for k, v in band.items() if k in metrics}, note)


def _bootstrap_band(p: np.ndarray, predicted: np.ndarray, score: np.ndarray | None,
                    seed: int) -> dict[str, float]:
    """95% half-widths of the metrics the batch's labels will give, drawn from ``p``.

    Each draw labels every row at random with its calibrated probabilities and computes
    the realized metrics; the band is 1.96 standard deviations of those. Above
    BOOTSTRAP_ROWS rows a seeded subsample is drawn and the spread scaled by the square
    root of the size ratio (a mean's standard error). The draws are computed together,
    in blocks of a few million cells (one confusion-matrix count, one sort for AUC).
    """
    rng = np.random.default_rng(seed)
    n, k = p.shape
    rows = np.arange(n) if n <= BOOTSTRAP_ROWS else np.sort(rng.choice(n, BOOTSTRAP_ROWS,
                                                                       replace=False))
    m = len(rows)
    chosen = predicted[rows]
    cumulative = np.cumsum(p[rows], axis=1)[:, :-1]
    ranking = None
    if score is not None:
        order = np.argsort(score[rows], kind="mergesort")
        ranked = score[rows][order]
        starts = np.flatnonzero(np.r_[True, np.diff(ranked) != 0])
        sizes = np.diff(np.r_[starts, m])
        ranking = order, starts, sizes
    draws: dict[str, list[np.ndarray]] = {}
    block = max(1, min(BOOTSTRAP_DRAWS, 4_000_000 // max(m * max(k - 1, 1), 1)))
    for first in range(0, BOOTSTRAP_DRAWS, block):
        count = min(block, BOOTSTRAP_DRAWS - first)
        u = rng.random((count, m, 1))
        truth = (u > cumulative[None]).sum(axis=2)  # (draws, rows): class codes
        index = (np.arange(count)[:, None] * k * k + truth * k + chosen[None]).ravel()
        matrices = np.bincount(index, minlength=count * k * k).reshape(count, k, k)
        found = _batch_metrics(matrices.astype(float))
        if ranking is not None:
            order, starts, sizes = ranking
            positive = (truth[:, order] == 1).astype(float)
            pos_mass = np.add.reduceat(positive, starts, axis=1)
            neg_mass = sizes[None] - pos_mass
            below = np.cumsum(neg_mass, axis=1) - neg_mass
            pairs = positive.sum(axis=1) * (m - positive.sum(axis=1))
            with np.errstate(divide="ignore", invalid="ignore"):
                found["roc_auc"] = np.where(
                    pairs > 0, (pos_mass * (below + 0.5 * neg_mass)).sum(axis=1) / pairs,
                    np.nan)
        for name, values in found.items():
            draws.setdefault(name, []).append(values)
    scale = math.sqrt(m / n)
    return {name: Z95 * float(np.nanstd(np.concatenate(values))) * scale
            for name, values in draws.items()}


def _tree_values(x: np.ndarray, tree: dict[str, list]) -> np.ndarray:
    """Leaf values of the stored tree for every row of ``x`` (vectorized descent)."""
    feature = np.asarray(tree["feature"])
    threshold = np.asarray(tree["threshold"])
    left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
    node = np.zeros(len(x), dtype=np.int64)
    while True:
        inner = left[node] >= 0
        if not inner.any():
            break
        at = node[inner]
        goes_left = x[np.flatnonzero(inner), feature[at]] <= threshold[at]
        node[inner] = np.where(goes_left, left[at], right[at])
    return np.asarray(tree["value"])[node]


def estimate_dle(inputs: pd.DataFrame, predicted: np.ndarray, estimator: dict[str, Any]
                 ) -> Estimate:
    """DLE: the stored loss models' expected errors, averaged over the batch.

    The band: each row's error varies around its expectation; with the residuals'
    shape measured on the held-out rows, Var|e| = E[e^2] (1 - ratio) and
    Var(e^2) = (kurtosis - 1) E[e^2]^2 per row, summed over the batch.
    """
    x = _dle_inputs(inputs, predicted, estimator["inputs"], estimator["fill"])
    models = estimator["models"]
    # Negative predictions clipped to zero, as NannyML does. Not raised per row to the
    # squared |error| estimate: two noisy models' per-row maximum biased RMSE upward;
    # only the batch's MSE is kept at least MAE^2 (which any batch's errors satisfy).
    absolute = np.maximum(_ensemble(x, models["absolute"]), 0.0)
    squared = np.maximum(_ensemble(x, models["squared"]), 0.0)
    shape = estimator["shape"]
    if shape.get("square", 0) > 0:
        # Two estimates of each row's squared error, averaged: the squared-error model
        # (unbiased, but its target is heavy-tailed, so its leaves are noisy) and the
        # |error| model squared, scaled by E[e^2] / E[expected |e|^2] on the held-out
        # rows (less noisy; right where the error's shape is the same everywhere).
        squared = 0.5 * squared + 0.5 * shape["square"] * absolute ** 2
    n = len(x)
    mae = float(absolute.mean())
    mse = max(float(squared.mean()), mae ** 2)
    rmse = math.sqrt(mse)
    var_mae = float((squared * max(1 - shape["ratio"], 0.0)).mean()) / n
    var_mse = float((max(shape["kurtosis"] - 1, 0.0) * squared ** 2).mean()) / n
    band = {"mae": Z95 * math.sqrt(var_mae),
            "rmse": Z95 * math.sqrt(var_mse) / (2 * rmse) if rmse > 0 else 0.0}
    return Estimate(DLE, n, {"mae": round(mae, 6), "rmse": round(rmse, 6)},
                    {k: round(v, 6) for k, v in band.items()},
                    "DLE: expected error per row from loss models fitted on the held-out "
                    "rows at training time")


def _ensemble(x: np.ndarray, model: dict[str, Any]) -> np.ndarray:
    """A stored boosted ensemble's prediction: its start plus the rate times every tree."""
    out = np.full(len(x), float(model["init"]))
    for tree in model["trees"]:
        out += model["rate"] * _tree_values(x, tree)
    return out


def drop(metric: str, reference: float, value: float) -> float:
    """How much worse ``value`` is than ``reference`` (positive: worse).

    A score (accuracy, F1, AUC) drops by the difference; an error (MAE, RMSE) by its
    rise relative to the reference, so one threshold reads "5 points" or "5% worse".
    """
    if metric in LOWER_IS_BETTER:
        return (value - reference) / reference if reference > 0 else 0.0
    return reference - value
