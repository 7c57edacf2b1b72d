"""Score a trained Pipeline on held-out rows: metrics, curves, and what the card draws.

Every number the model card shows is computed here, where the model is loaded anyway:
the card step then draws without scikit-learn or the model (no 1.6 s import, no second
pass over the rows), as TFX's ModelCardGenerator renders the Evaluator's output.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kfp_mlops.data.kinds import NUMERIC
from kfp_mlops.errors import DataError
from kfp_mlops.model.package import ModelMetadata

if TYPE_CHECKING:
    import pandas as pd

# pandas and scikit-learn are imported inside the functions that use them: the card
# step imports this module for Evaluation alone and draws without either.

# KFP's UI draws a ROC curve from at most a few hundred points comfortably; so do the
# card's SVG charts.
MAX_ROC_POINTS = 200
# Scatter plots (regression residuals) draw a seeded sample of this many rows at most.
MAX_SCATTER_ROWS = 2000
# Permutation importance refits nothing, but each shuffled column costs ``repeats``
# predictions over the sampled rows, and each prediction reads every input column: the
# cost grows with rows x repeats x measured columns x all columns. Unbounded, a
# 2,000-column table took 832 s against 19 s of training. Every bound is a count (no
# clock), so the same model and data always give the same figures:
# - rows: a seeded sample of at most IMPORTANCE_MAX_ROWS (barely changes the ranking);
IMPORTANCE_MAX_ROWS = 2000
IMPORTANCE_REPEATS = 5
# - columns: at most IMPORTANCE_MAX_COLUMNS are measured (the card draws the top 15).
#   With more inputs, the ones measured are those whose shuffling changes the model's
#   output most on IMPORTANCE_SCREEN_ROWS rows (see ``screen_columns``): a change of
#   probabilities, not of accuracy, so few rows tell used from unused columns.
IMPORTANCE_MAX_COLUMNS = 30
IMPORTANCE_SCREEN_ROWS = 50
IMPORTANCE_MIN_SCREEN_ROWS = 20
SCREEN_ROWS_PER_CALL = 5000  # stacked rows per predict call while screening
# - cells: the shuffled predictions read at most IMPORTANCE_MAX_CELLS input cells
#   (measured columns x repeats x rows x all columns); past it the rows shrink (down to
#   IMPORTANCE_MIN_ROWS), then the repeats (down to IMPORTANCE_MIN_REPEATS). The screen
#   keeps within the same number of cells (see ``screen_row_count``). A 2,000-column
#   table now evaluates in 6 s (screen and 60M measured cells) after 24 s of training
#   (bench/bench_importance.py, one thread).
IMPORTANCE_MAX_CELLS = 100_000_000
IMPORTANCE_MIN_ROWS = 200
IMPORTANCE_MIN_REPEATS = 2


@dataclass
class Evaluation:
    """Scalar metrics plus the curves the KFP UI and the model card draw.

    ``curves`` holds the card's other plots: ``precision_recall`` and ``calibration``
    (classifiers with probabilities), ``residuals`` (regression, a sample of rows).
    ``notes`` say why a plot is missing. ``importance`` and ``estimator_params`` are
    filled only when :func:`evaluate_model` is asked to ``explain``.
    """

    metrics: dict[str, float]
    rows: int = 0
    labels: list[str] | None = None
    confusion_matrix: list[list[int]] | None = None
    roc: dict[str, list[float]] | None = None  # fpr, tpr, thresholds (binary only)
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    importance: dict[str, Any] | None = None
    estimator_params: dict[str, Any] | None = None
    # The performance estimator fitted on these held-out rows (model/estimate.py), which
    # publish stores with the version; filled by the evaluate step.
    estimator: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the evaluate step's ``evaluation`` artifact)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Evaluation:
        """Read :meth:`to_dict`'s output back, ignoring keys of newer versions."""
        if not isinstance(raw, dict) or not isinstance(raw.get("metrics"), dict):
            raise DataError("an evaluation must be a dict with a 'metrics' dict "
                            "(the evaluate step's evaluation artifact)")
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def evaluate_model(
    model, metadata: ModelMetadata, frame: pd.DataFrame, *, explain: bool = False,
    seed: int = 0,
) -> Evaluation:
    """Evaluate ``model`` on ``frame`` (which holds the target column).

    With ``explain``, also the permutation importance of the input columns (bounded in
    rows, columns and predicted cells: see :data:`IMPORTANCE_MAX_ROWS` and what follows
    it) and the fitted estimator's parameters: what the model card shows besides the
    metrics.
    """
    from kfp_mlops.model.features import class_labels, model_inputs, refuse_infinite

    if metadata.target not in frame.columns:
        raise DataError(f"evaluation data has no target column {metadata.target!r}")
    labelled = frame[frame[metadata.target].notna()]
    inputs = model_inputs(labelled, metadata)
    refuse_infinite(inputs, [f.name for f in metadata.features if f.kind == NUMERIC],
                    "evaluation")
    if metadata.task == "classification":
        y = class_labels(labelled[metadata.target])
        evaluation = _classification(model, inputs, y)
    else:
        y = labelled[metadata.target].astype(float)
        evaluation = _regression(model, inputs, y, seed)
    evaluation.rows = len(labelled)
    if explain:
        from threadpoolctl import threadpool_limits

        # Hundreds of predictions of a few thousand rows each: OpenMP threads gain little
        # on them and spin-wait when other processes hold the cores. With two threads on
        # the shared 2-core machine evaluate took 75-85 s on a 2,000-column table, with
        # one 11-17 s (the same figures either way).
        with threadpool_limits(limits=1, user_api="openmp"):
            evaluation.importance = _importance(model, inputs, y, metadata.task, seed)
        evaluation.estimator_params = _estimator_params(model)
    return evaluation


def _classification(model, inputs: pd.DataFrame, y: pd.Series) -> Evaluation:
    import pandas as pd
    from sklearn import metrics as skm

    labels = [str(c) for c in model.classes_]
    # One pass through the pipeline: a scikit-learn classifier's predict is the argmax
    # of predict_proba, so deriving it halves evaluation time on large test splits.
    proba = model.predict_proba(inputs) if hasattr(model, "predict_proba") else None
    predicted = (
        np.asarray(model.classes_)[proba.argmax(axis=1)] if proba is not None
        else model.predict(inputs)
    )
    # The metrics run on integer codes, not strings: scikit-learn sorts its labels
    # several times per metric, and sorting Python strings made evaluation 5x slower
    # on 200k rows. Codes follow ``labels``; test-only labels get codes after them.
    unseen = sorted(set(y.unique()) - set(labels))
    categories = labels + unseen
    y_codes = pd.Categorical(y, categories=categories).codes.astype(np.int64)
    predicted_codes = pd.Categorical(
        pd.Series(predicted).astype(str), categories=categories
    ).codes.astype(np.int64)
    result = {
        "accuracy": skm.accuracy_score(y_codes, predicted_codes),
        "balanced_accuracy": skm.balanced_accuracy_score(y_codes, predicted_codes),
        "f1_macro": skm.f1_score(y_codes, predicted_codes, average="macro", zero_division=0),
        "precision_macro": skm.precision_score(
            y_codes, predicted_codes, average="macro", zero_division=0
        ),
        "recall_macro": skm.recall_score(
            y_codes, predicted_codes, average="macro", zero_division=0
        ),
    }
    evaluation = Evaluation(
        metrics=result,
        labels=labels,
        confusion_matrix=skm.confusion_matrix(
            y_codes, predicted_codes, labels=range(len(labels))
        ).tolist(),
    )
    if proba is None:
        evaluation.notes.append("The estimator gives no probabilities: no ROC, "
                                "precision-recall or calibration curves.")
    else:
        if not unseen:
            result["log_loss"] = skm.log_loss(y_codes, proba, labels=range(len(labels)))
        if len(labels) == 2:
            positive = (y_codes == 1).astype(int)
            if positive.min() == positive.max():
                evaluation.notes.append("The test rows hold one class only: no ROC, "
                                        "precision-recall or calibration curves.")
            else:
                result["roc_auc"] = skm.roc_auc_score(positive, proba[:, 1])
                fpr, tpr, thresholds = skm.roc_curve(positive, proba[:, 1])
                evaluation.roc = _thin_roc(fpr, tpr, thresholds)
                evaluation.curves = _binary_curves(positive, proba[:, 1], labels[1])
        else:
            if not unseen and len(np.unique(y_codes)) == len(labels):
                result["roc_auc_ovr"] = skm.roc_auc_score(
                    y_codes, proba, multi_class="ovr", labels=range(len(labels))
                )
            top = int(np.bincount(y_codes).argmax())
            if top < len(labels):  # the most frequent class is one the model knows
                evaluation.curves["calibration"] = _calibration(
                    (y_codes == top).astype(int), proba[:, top], labels[top],
                    f"One-vs-rest for the most frequent class {labels[top]!r}.")
            evaluation.notes.append(
                f"{len(labels)} classes: ROC and precision-recall curves are drawn for "
                "binary targets only; the metrics table has roc_auc_ovr.")
    evaluation.metrics = {k: round(float(v), 6) for k, v in result.items()}
    return evaluation


def _thinned(count: int) -> np.ndarray:
    """Evenly spread indices, first and last included, at most MAX_ROC_POINTS."""
    return np.unique(np.linspace(0, count - 1, min(count, MAX_ROC_POINTS)).astype(int))


def _thin_roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> dict[str, list[float]]:
    # roc_curve's first threshold is +inf, which JSON (and the KFP UI) cannot hold.
    thresholds = np.where(np.isfinite(thresholds), thresholds, 1.0)
    keep = _thinned(len(fpr))
    return {
        "fpr": [float(v) for v in fpr[keep]],
        "tpr": [float(v) for v in tpr[keep]],
        "thresholds": [float(min(v, 1.0)) for v in thresholds[keep]],
    }


def _binary_curves(positive: np.ndarray, score: np.ndarray, label: str) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(positive, score)
    keep = _thinned(len(precision))
    return {
        "precision_recall": {
            "precision": precision[keep].tolist(), "recall": recall[keep].tolist(),
            "average_precision": float(average_precision_score(positive, score)),
            "prevalence": float(positive.mean()), "positive": label,
        },
        "calibration": _calibration(positive, score, label, ""),
    }


def _calibration(positive: np.ndarray, score: np.ndarray, label: str, note: str
                 ) -> dict[str, Any]:
    from sklearn.calibration import calibration_curve

    bins = int(max(3, min(10, len(positive) // 20)))
    observed, predicted = calibration_curve(positive, score, n_bins=bins, strategy="uniform")
    return {"predicted": predicted.tolist(), "observed": observed.tolist(), "bins": bins,
            "positive": label, "note": note}


def _regression(model, inputs: pd.DataFrame, y: pd.Series, seed: int) -> Evaluation:
    from sklearn import metrics as skm

    predicted = np.asarray(model.predict(inputs), dtype=float)
    result = {
        "r2": skm.r2_score(y, predicted),
        "rmse": math.sqrt(skm.mean_squared_error(y, predicted)),
        "mae": skm.mean_absolute_error(y, predicted),
    }
    actual = y.to_numpy(dtype=float)
    if len(actual) > MAX_SCATTER_ROWS:
        drawn = np.sort(np.random.default_rng(seed).choice(len(actual), MAX_SCATTER_ROWS,
                                                           replace=False))
        actual, predicted = actual[drawn], predicted[drawn]
    return Evaluation(
        metrics={k: round(float(v), 6) for k, v in result.items()},
        curves={"residuals": {"actual": actual.tolist(), "predicted": predicted.tolist()}},
    )


def importance_bounds(rows: int, columns: int) -> tuple[int, int, int]:
    """(rows, columns, repeats) permutation importance measures for a table this size.

    Deterministic: the same counts always give the same bounds (see the constants).
    """
    measured = min(columns, IMPORTANCE_MAX_COLUMNS)
    rows = min(rows, IMPORTANCE_MAX_ROWS)
    repeats = IMPORTANCE_REPEATS
    per_row = max(measured * columns, 1)  # cells read per sampled row and repeat
    if repeats * rows * per_row > IMPORTANCE_MAX_CELLS:
        rows = min(rows, max(IMPORTANCE_MIN_ROWS, IMPORTANCE_MAX_CELLS // (repeats * per_row)))
    if repeats * rows * per_row > IMPORTANCE_MAX_CELLS:
        repeats = max(IMPORTANCE_MIN_REPEATS, IMPORTANCE_MAX_CELLS // (rows * per_row))
    return rows, measured, repeats


def _importance(model, inputs: pd.DataFrame, y: pd.Series, task: str, seed: int
                ) -> dict[str, Any]:
    available, total = inputs.shape
    rows, measured, repeats = importance_bounds(available, total)
    # Seeded random rows, by position (``y`` is aligned with ``inputs``; an index may
    # repeat): the screen reads the first few of this random order, the shuffles the
    # first ``rows``.
    order = np.random.default_rng(seed).permutation(available)
    columns = [str(c) for c in inputs.columns]
    bounded = []  # what the bounds cut, in words for the card
    if measured < total:
        screen_rows = screen_row_count(total, measured)
        columns = screen_columns(model, inputs.iloc[np.sort(order[:screen_rows])], measured,
                                 seed)
        bounded.append(
            f"{measured} of {total} columns measured, those whose shuffling changed the "
            f"model's output most on {min(screen_rows, available)} rows; the others were "
            "not measured")
    chosen = np.sort(order[:rows])
    inputs, y = inputs.iloc[chosen], y.iloc[chosen]
    cut = []
    if rows < min(available, IMPORTANCE_MAX_ROWS):
        cut.append(f"{rows} rows")
    if repeats < IMPORTANCE_REPEATS:
        cut.append(f"{repeats} shuffles")
    if cut:
        bounded.append(f"{' and '.join(cut)} to stay within {IMPORTANCE_MAX_CELLS:,} predicted "
                       "input cells")
    means, spreads = permutation_importance(model, inputs, y, task, seed, columns=columns,
                                            repeats=repeats)
    return {"columns": columns, "mean": means.tolist(), "std": spreads.tolist(),
            "rows": len(inputs), "repeats": repeats, "total_columns": int(total),
            "scoring": "accuracy" if task == "classification" else "r2",
            "note": "; ".join(bounded)}


def _model_output(model, inputs: pd.DataFrame) -> np.ndarray:
    """What the model says about each row, as numbers (rows x outputs)."""
    if hasattr(model, "predict_proba"):
        try:
            return np.asarray(model.predict_proba(inputs), dtype=float)
        except (AttributeError, NotImplementedError):
            pass
    predicted = np.asarray(model.predict(inputs))
    if predicted.dtype.kind in "fiub":
        return predicted.astype(float).reshape(len(inputs), -1)
    _, codes = np.unique(predicted.astype(str), return_inverse=True)
    return np.eye(codes.max() + 1)[codes]


def _stack_shuffled(rows: pd.DataFrame, groups: list[list[str]], rng: np.random.Generator
                    ) -> pd.DataFrame:
    """One copy of ``rows`` per group, stacked, with that group's columns shuffled.

    Built as one array per dtype family (numbers, the rest): assigning columns to frame
    copies one by one fragments them, and stacking the fragments took most of the time.
    """
    import pandas as pd

    count, names = len(rows), [str(c) for c in rows.columns]
    perms = [rng.permutation(count) for _ in groups]
    numeric = [n for n in names if rows[n].dtype.kind == "f"]
    parts = []
    for family in (numeric, [n for n in names if n not in set(numeric)]):
        if not family:
            continue
        base = rows[family].to_numpy()
        stacked = np.tile(base, (len(groups), 1))
        where = {name: i for i, name in enumerate(family)}
        for g, group in enumerate(groups):
            cols = [where[c] for c in group if c in where]
            if cols:
                stacked[g * count:(g + 1) * count, cols] = base[perms[g]][:, cols]
        parts.append(pd.DataFrame(stacked, columns=family))
    return pd.concat(parts, axis=1)[names] if len(parts) > 1 else parts[0]


def _output_changes(model, rows: pd.DataFrame, groups: list[list[str]], base: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Mean absolute change of the model's output when each group of columns is shuffled.

    The groups' shuffled copies of ``rows`` are stacked and predicted a few thousand
    rows at a time.
    """
    count = len(rows)
    per_call = max(1, SCREEN_ROWS_PER_CALL // max(count, 1))
    changes = np.empty(len(groups))
    for start in range(0, len(groups), per_call):
        chunk = groups[start:start + per_call]
        output = _model_output(model, _stack_shuffled(rows, chunk, rng))
        for i in range(len(chunk)):
            block = output[i * count:(i + 1) * count]
            changes[start + i] = float(np.abs(block - base).sum(axis=1).mean())
    return changes


def _split(columns: list[str], parts: int) -> list[list[str]]:
    """``columns`` in at most ``parts`` runs of adjacent columns of near-equal size."""
    parts = max(1, min(parts, len(columns)))
    bounds = np.linspace(0, len(columns), parts + 1).round().astype(int)
    return [columns[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _screen_levels(columns: int, keep: int) -> int:
    """Rounds of :func:`screen_columns`: groups shrink 4-fold per round down to one column."""
    size, levels = -(-columns // (4 * keep)), 1
    while size > 1:
        size, levels = -(-size // 4), levels + 1
    return levels


def screen_row_count(columns: int, keep: int) -> int:
    """Rows the screen shuffles on: IMPORTANCE_SCREEN_ROWS, fewer on very wide tables.

    The screen predicts at most 4 x ``keep`` shuffled copies of its rows per round; they
    stay within IMPORTANCE_MAX_CELLS input cells, down to IMPORTANCE_MIN_SCREEN_ROWS rows.
    """
    per_row = 4 * keep * _screen_levels(columns, keep) * max(columns, 1)
    return int(min(IMPORTANCE_SCREEN_ROWS,
                   max(IMPORTANCE_MIN_SCREEN_ROWS, IMPORTANCE_MAX_CELLS // per_row)))


def screen_columns(model, inputs: pd.DataFrame, keep: int, seed: int = 0) -> list[str]:
    """The ``keep`` columns whose shuffling changes the model's output most.

    The cheap stand-in for permutation importance on wide tables: the change of the
    model's output (probabilities, or predictions) rather than of its score, so few rows
    do (a column the model never reads changes nothing), on the rows of ``inputs`` (see
    :func:`screen_row_count`). Group testing keeps the cost independent of the number
    of columns but for its logarithm: the columns are cut into 4 x ``keep`` runs of
    adjacent columns, each run shuffled at once; the ``keep`` runs that changed the
    output most are cut in 4 again, and so on down to single columns (one round when
    there are at most 4 x ``keep`` columns). Seeded; the result keeps the input order.
    """
    columns = [str(c) for c in inputs.columns]
    if len(columns) <= keep:
        return columns
    rng = np.random.default_rng(seed)
    base = _model_output(model, inputs)
    position = {name: i for i, name in enumerate(columns)}
    groups = _split(columns, 4 * keep)
    while True:
        changes = _output_changes(model, inputs, groups, base, rng)
        ranked = np.argsort(-changes, kind="stable")
        if all(len(group) == 1 for group in groups):
            break
        groups = [part for i in ranked[:keep] for part in _split(groups[i], 4)]
        groups.sort(key=lambda group: position[group[0]])  # input order: stable ties
    chosen = {groups[i][0] for i in ranked[:keep]}
    return [c for c in columns if c in chosen]


def permutation_importance(
    model: Any, inputs: pd.DataFrame, y: pd.Series, task: str, seed: int,
    columns: list[str] | None = None, repeats: int = IMPORTANCE_REPEATS,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the score drop when each of ``columns`` (default all) is shuffled.

    The same statistic as ``sklearn.inspection.permutation_importance``, but the
    ``repeats`` shuffled copies of one column are scored in one ``predict`` call on one
    stacked frame built once (a fitted Pipeline's per-call cost made scikit-learn's
    one-call-per-shuffle loop take 3.3 s on 11 columns; copying the frame per column
    made wide tables quadratic in memory traffic).
    """
    import pandas as pd
    from sklearn.metrics import r2_score

    # Class names compared as strings, converted once: accuracy_score would sort them
    # again for each of the columns x repeats scores.
    truth = y.astype(str).to_numpy() if task == "classification" else y

    def score(predicted: np.ndarray) -> float:
        if task == "classification":
            return float(np.mean(np.asarray(predicted).astype(str) == truth))
        return float(r2_score(truth, predicted))

    rng = np.random.default_rng(seed)
    rows = len(inputs)
    columns = [str(c) for c in inputs.columns] if columns is None else columns
    baseline = score(model.predict(inputs))
    drops = np.empty((len(columns), repeats))
    stacked = pd.concat([inputs] * repeats, ignore_index=True)
    for i, column in enumerate(columns):
        values = inputs[column].to_numpy()
        original = stacked[column]
        stacked[column] = np.concatenate([values[rng.permutation(rows)] for _ in range(repeats)])
        predicted = np.asarray(model.predict(stacked))
        stacked[column] = original
        for r in range(repeats):
            drops[i, r] = baseline - score(predicted[r * rows:(r + 1) * rows])
    return drops.mean(axis=1), drops.std(axis=1)


def _estimator_params(model: Any) -> dict[str, Any]:
    """Every parameter of the fitted estimator, JSON-safe (objects as their repr)."""
    import json

    steps = getattr(model, "named_steps", {})
    estimator = steps.get("estimator", model) if isinstance(steps, dict) else model
    from kfp_mlops.model.encoded import LabelEncoded

    if isinstance(estimator, LabelEncoded):  # the wrapped estimator's own parameters
        estimator = estimator.estimator
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return json.loads(json.dumps(params, default=repr))
