"""Hyperparameter tuning: seeded random search over a small grid, scored by cross-validation.

The search is split in three pure steps so a pipeline can fan the middle one out
(``dsl.ParallelFor``), one trial per task:

1. :func:`make_candidates` samples parameter sets from a search space (a JSON object of
   parameter name -> list of values; :data:`DEFAULT_SEARCH_SPACES` per estimator);
2. :func:`run_trial` cross-validates the very Pipeline :func:`train_model` builds with
   one parameter set and returns a :class:`TrialResult`;
3. :func:`select_best` picks the highest mean score (ties: the first).

:func:`run_trials` is step 2 for every candidate at once, the (candidate, fold) fits
spread over a process pool: what a local run uses, where one process per trial would
import pandas and scikit-learn again for each trial.

Every trial uses the same seed, so the folds are identical and the scores comparable.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_mlops.errors import DataError
from kfp_mlops.model.settings import (
    DEFAULT_ESTIMATOR,
    DEFAULT_METRIC,
    TrainingSettings,
    check_task,
    chosen,
)
from kfp_mlops.processes import pool_context, usable_cores

if TYPE_CHECKING:
    import pandas as pd

# kfp_mlops.model.train (pandas, scikit-learn: seconds of imports) is imported where it
# is used, so select-best, which only compares JSON results, starts in a fraction of that.


def make_estimator(task: str, estimator: str | None, params: dict[str, Any], seed: int) -> Any:
    """:func:`kfp_mlops.model.train.make_estimator` (imported on first use)."""
    from kfp_mlops.model.train import make_estimator as make

    return make(task, estimator, params, seed)

SearchSpace = dict[str, list[Any]]

# Small grids around scikit-learn's defaults (each default value is in its grid), so a
# handful of random trials covers the values that usually matter.
DEFAULT_SEARCH_SPACES: dict[str, SearchSpace] = {
    "hist_gradient_boosting": {
        "learning_rate": [0.03, 0.1, 0.3],
        "max_iter": [100, 200, 400],
        "max_leaf_nodes": [15, 31, 63],
        "l2_regularization": [0.0, 0.1, 1.0],
    },
    "random_forest": {
        "n_estimators": [100, 200, 400],
        "max_depth": [None, 8, 16],
        "min_samples_leaf": [1, 2, 5],
    },
    "logistic_regression": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "ridge": {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
    # Estimators named by import path (kfp_mlops.model.estimators), keyed by package:
    # xgboost.XGBClassifier and xgboost.XGBRegressor share one grid (XGBoost's defaults:
    # max_depth 6, learning_rate 0.3, 100 trees; LightGBM's: num_leaves 31, 0.1, 100).
    "xgboost": {
        "n_estimators": [100, 200, 400],
        "max_depth": [3, 6, 9],
        "learning_rate": [0.03, 0.1, 0.3],
        "min_child_weight": [1, 5],
        "subsample": [0.8, 1.0],
    },
    "lightgbm": {
        "n_estimators": [100, 200, 400],
        "num_leaves": [15, 31, 63],
        "learning_rate": [0.03, 0.1, 0.3],
        "min_child_samples": [10, 20, 40],
    },
}

# User-facing metric name -> scikit-learn scorer. Scorers are "higher is better", so
# error metrics are negated (rmse is scored as neg_root_mean_squared_error).
SCORERS: dict[str, dict[str, str]] = {
    "classification": {
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced_accuracy",
        "f1_macro": "f1_macro",
        "roc_auc": "roc_auc",
        "log_loss": "neg_log_loss",
    },
    "regression": {
        "r2": "r2",
        "rmse": "neg_root_mean_squared_error",
        "mae": "neg_mean_absolute_error",
    },
}


@dataclass
class TrialResult:
    """One parameter set's cross-validated score (scikit-learn scorer: higher is better)."""

    params: dict[str, Any]
    score: float  # mean over folds
    std: float  # standard deviation over folds
    metric: str  # scorer name, e.g. "accuracy" or "neg_root_mean_squared_error"
    fold_scores: list[float] = field(default_factory=list)

    def to_json(self) -> str:
        """Serialise as one JSON object (the ``run_trial`` component's output)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> TrialResult:
        """Parse :meth:`to_json`'s output (a string or the already-parsed dict)."""
        try:
            raw = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as exc:
            raise DataError(f"trial result {text!r} is not JSON: {exc.msg}") from None
        missing = {"params", "score", "std", "metric"} - set(raw if isinstance(raw, dict) else {})
        if not isinstance(raw, dict) or missing:
            raise DataError(
                f"trial result {text!r} lacks {sorted(missing)}; pass the output of run_trial"
            )
        return cls(
            params=dict(raw["params"]),
            score=float(raw["score"]),
            std=float(raw["std"]),
            metric=str(raw["metric"]),
            fold_scores=[float(s) for s in raw.get("fold_scores", [])],
        )

    def describe(self) -> str:
        """One line in the metric's own units, e.g. ``rmse 53.1 ± 2.0``."""
        name, value = self.metric, self.score
        if name.startswith("neg_"):
            name, value = _SHORT_NAMES.get(name, name.removeprefix("neg_")), -value
        return f"{name} {value:.4g} ± {self.std:.2g} ({len(self.fold_scores)}-fold CV)"


_SHORT_NAMES = {
    scorer: short for table in SCORERS.values() for short, scorer in table.items()
}


def default_search_space(estimator: str | None = None) -> SearchSpace:
    """A copy of the default search space of ``estimator`` (``None``: the default one)."""
    from kfp_mlops.model.estimators import is_external

    name = DEFAULT_ESTIMATOR if estimator is None else estimator
    if is_external(name):  # xgboost.XGBRegressor -> the "xgboost" grid
        name = name.replace(":", ".").split(".")[0]
    if name not in DEFAULT_SEARCH_SPACES:
        raise DataError(
            f"no default search space for estimator {estimator!r}; pass search_space as "
            "JSON (--search-space '{\"param\": [value, ...]}'), or choose one of "
            f"{', '.join(['auto', *DEFAULT_SEARCH_SPACES])}"
        )
    return {k: list(v) for k, v in DEFAULT_SEARCH_SPACES[name].items()}


def _check_param(task: str, estimator: str | None, name: str, value: Any, where: str) -> None:
    """Refuse a parameter the estimator does not have, or a value it rejects."""
    shown = DEFAULT_ESTIMATOR if estimator is None else estimator
    known = make_estimator(task, estimator, {}, 0).get_params()
    if name not in known:
        raise DataError(
            f"{where}: {name!r} is not a parameter of {shown} for {task}; "
            f"its parameters are {', '.join(sorted(known))}"
        )
    candidate = make_estimator(task, estimator, {name: value}, 0)
    # scikit-learn checks values only at fit time; its own validator runs the same
    # checks now, so a bad value fails before a pipeline fans out.
    validate = getattr(candidate, "_validate_params", None)
    # Estimators of other libraries inherit the method without the constraints it reads.
    if callable(validate) and hasattr(candidate, "_parameter_constraints"):
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise DataError(f"{where}: {name}={value!r} is rejected by {shown}: {exc}") from None


def parse_search_space(
    text: str | dict[str, Any] | None, task: str = "classification",
    estimator: str | None = None,
) -> SearchSpace:
    """Parse a search space: ``None``/``auto`` (the estimator's default) or a JSON object of lists.

    Every key must be a parameter of the estimator (``make_estimator(...).get_params()``)
    and every value a non-empty list of distinct JSON scalars the estimator accepts.
    """
    check_task(task)
    estimator = chosen(estimator)
    make_estimator(task, estimator, {}, 0)  # refuses an unknown estimator by name
    if chosen(text) is None:
        return default_search_space(estimator)
    if isinstance(text, str):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"search space {text!r} is not JSON ({exc.msg}); write an object of lists "
                'like {"max_depth": [3, 5, 8]} or "auto"'
            ) from None
    else:
        raw = text
    if not isinstance(raw, dict) or not raw:
        raise DataError(
            f"search space {text!r} must be a non-empty JSON object of lists like "
            '{"max_depth": [3, 5, 8]}, or "auto"'
        )
    space: SearchSpace = {}
    for name, values in raw.items():
        where = f"search space key {name!r}"
        if not isinstance(values, list) or not values:
            raise DataError(
                f"{where}: value {values!r} must be a non-empty list of values, e.g. [{values!r}]"
            )
        for value in values:
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise DataError(f"{where}: value {value!r} is not a number, string, bool or null")
            if values.count(value) > 1:
                raise DataError(f"{where}: value {value!r} is listed twice; list each value once")
            _check_param(task, estimator, name, value, where)
        space[name] = list(values)
    return space


def grid_size(space: SearchSpace) -> int:
    """Number of parameter combinations in ``space``."""
    return math.prod(len(v) for v in space.values())


def _combination(space: SearchSpace, index: int) -> dict[str, Any]:
    # Decode a mixed-radix index: sampling indices avoids building a huge product.
    combo = {}
    for name, values in reversed(list(space.items())):
        index, position = divmod(index, len(values))
        combo[name] = values[position]
    return {name: combo[name] for name in space}


def make_candidates(settings: TrainingSettings) -> list[dict[str, Any]]:
    """Sample up to ``settings.n_trials`` distinct parameter sets from the grid, seeded.

    The grid is ``settings.search_space`` (``None``: the estimator's default). Each
    candidate is ``settings.params`` updated with one grid combination (the grid wins on
    a shared key). ``n_trials <= 1`` means no tuning: the only candidate is
    ``settings.params``. A grid smaller than ``n_trials`` yields every combination once.
    """
    task = settings.task
    if task is None:
        raise DataError("tuning needs a task; check-data settles it from the data")
    base = dict(settings.params)
    for name, value in base.items():
        _check_param(task, settings.estimator, name, value, f"params key {name!r}")
    if settings.n_trials <= 1:
        return [dict(base)]
    space = parse_search_space(settings.search_space, task, settings.estimator)
    total = grid_size(space)
    indices = random.Random(settings.seed).sample(range(total), min(settings.n_trials, total))
    return [{**base, **_combination(space, i)} for i in indices]


def resolve_metric(task: str, metric: str | None = None) -> str:
    """The scikit-learn scorer name for a user metric (``None``/``auto``: accuracy or r2)."""
    check_task(task)
    name = DEFAULT_METRIC[task] if chosen(metric) is None else metric
    table = SCORERS[task]
    if name in table:
        return table[name]
    if name in table.values():  # already a scorer name
        return name  # type: ignore[return-value]
    raise DataError(
        f"metric {metric!r} cannot score {task} trials; use one of {', '.join(['auto', *table])}"
    )


@dataclass
class _TrialPlan:
    """One candidate ready to cross-validate: the unfitted Pipeline, its rows and folds."""

    model: Any
    inputs: pd.DataFrame
    y: pd.Series
    params: dict[str, Any]
    scorer: str
    splits: list[tuple[Any, Any]]


def _plan_trial(frame: pd.DataFrame, settings: TrainingSettings) -> _TrialPlan:
    from sklearn.model_selection import KFold, StratifiedKFold

    from kfp_mlops.model.train import prepare_training

    target, task = settings.fitting()
    cv_folds, seed = settings.cv_folds, settings.seed
    scorer = resolve_metric(task, settings.metric)
    if target not in frame.columns:
        raise DataError(f"training data has no target column {target!r}")
    setup = prepare_training(frame, settings)
    y = setup.y
    if task == "classification":
        counts = y.value_counts()
        if counts.min() < cv_folds:
            raise DataError(
                f"class {counts.idxmin()!r} has {counts.min()} rows, fewer than "
                f"cv_folds={cv_folds}; lower cv_folds or drop the rare class"
            )
        folds: KFold | StratifiedKFold = StratifiedKFold(cv_folds, shuffle=True, random_state=seed)
    else:
        if len(y) < cv_folds:
            raise DataError(f"{len(y)} labelled rows cannot make {cv_folds} folds; lower cv_folds")
        folds = KFold(cv_folds, shuffle=True, random_state=seed)
    return _TrialPlan(setup.model, setup.inputs, y, setup.params, scorer,
                      list(folds.split(setup.inputs, y)))


def _score_fold(plan: _TrialPlan, fold: int, threads: int) -> float:
    """Fit a clone of the Pipeline on one fold's training rows and score its held-out rows."""
    from sklearn.model_selection import cross_val_score
    from threadpoolctl import threadpool_limits

    # cross_val_score over this one split: the same clone, fit and scorer as the fold
    # gets in a full cross_val_score, so the score is the same number.
    with threadpool_limits(limits=threads, user_api="openmp"):
        (score,) = cross_val_score(plan.model, plan.inputs, plan.y, scoring=plan.scorer,
                                   cv=[plan.splits[fold]], n_jobs=1, error_score="raise")
    return float(score)


def _result(plan: _TrialPlan, scores: Sequence[float]) -> TrialResult:
    import numpy as np

    values = np.asarray(scores, dtype=float)  # as cross_val_score returns them
    return TrialResult(params=plan.params, score=float(values.mean()), std=float(values.std()),
                       metric=plan.scorer, fold_scores=[float(s) for s in values])


def run_trial(frame: pd.DataFrame, settings: TrainingSettings, threads: int = 1) -> TrialResult:
    """Cross-validate the Pipeline ``train_model`` would fit with ``settings``.

    The folds run one after another in this process. ``threads`` caps the OpenMP
    threads of the estimator (hist_gradient_boosting): trials run side by side (one pod
    per trial, with a one-CPU request, on a cluster), and oversubscribed OpenMP threads
    spin-wait, which made a trial ten times slower on a busy 2-core machine than with
    one thread each. :func:`run_trials` spreads the folds of many trials over processes.
    """
    plan = _plan_trial(frame, settings)
    return _result(plan, [_score_fold(plan, i, threads) for i in range(len(plan.splits))])


# The plans a pool worker scores, set once per worker by _init_worker (inherited on fork).
_WORKER_PLANS: list[_TrialPlan] = []


def _init_worker(plans: list[_TrialPlan], pin: Any = None) -> None:
    """Hand a worker the plans; with ``pin`` (a shared counter), bind it to its own core.

    Pinning: on the 2-core VM these figures come from, both forked workers of a
    kfp.local task were seen sharing one CPU at about 50 % each while the other CPU
    stood idle; bound one per core, both ran at 100 %.
    """
    global _WORKER_PLANS
    _WORKER_PLANS = plans
    if pin is not None and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        with pin.get_lock():
            index, pin.value = pin.value, pin.value + 1
        try:
            os.sched_setaffinity(0, {cores[index % len(cores)]})
        except OSError:  # a core went away or is not ours: leave the mask as it was
            pass


def _pool_job(job: tuple[int, int]) -> tuple[float, float]:
    """Score fold ``job[1]`` of trial ``job[0]`` with one OpenMP thread: (score, CPU s)."""
    trial, fold = job
    start = time.process_time()
    score = _score_fold(_WORKER_PLANS[trial], fold, 1)
    return score, time.process_time() - start


@dataclass
class TuningStats:
    """Where a :func:`run_trials` call spent its time (for logs and the benchmark)."""

    workers: int = 1
    fits: int = 0
    setup_seconds: float = 0.0  # building each candidate's Pipeline and folds
    wall_seconds: float = 0.0  # every fit and score, first to last
    fit_cpu_seconds: float = 0.0  # CPU time of the fits, summed over workers

    def describe(self) -> str:
        """One log line, e.g. ``24 fits on 2 processes: 30.1 s wall, 58.3 CPU-s (1.94 cores)``."""
        busy = self.fit_cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0
        return (f"{self.fits} fits on {self.workers} process{'es' if self.workers > 1 else ''}: "
                f"{self.wall_seconds:.1f} s wall, {self.fit_cpu_seconds:.1f} CPU-s "
                f"({busy:.2f} cores busy); setup {self.setup_seconds:.2f} s")


def run_trials(
    frame: pd.DataFrame,
    settings: TrainingSettings,
    candidates: Sequence[str | dict[str, Any]] = ("{}",),
    workers: int = 0,
    stats: TuningStats | None = None,
) -> list[TrialResult]:
    """:func:`run_trial` for every candidate, the folds spread over ``workers`` processes.

    Every (candidate, fold) fit is one job for a pool of ``workers`` processes (``0``:
    :func:`usable_cores`), each fit with one OpenMP thread, so the cores are busy without
    being oversubscribed and the modules are imported once (a forked pool inherits them).
    ``workers=1`` runs the fits one after another in this process. The results are
    those of :func:`run_trial` with each candidate's parameters, in the candidates' order;
    ``stats``, when given, is filled with where the time went.
    """
    stats = stats if stats is not None else TuningStats()
    started = time.perf_counter()
    plans = [_plan_trial(frame, settings.with_params(c)) for c in candidates]
    jobs = [(t, f) for t, plan in enumerate(plans) for f in range(len(plan.splits))]
    workers = min(workers if workers > 0 else usable_cores(), len(jobs))
    stats.workers, stats.fits = max(workers, 1), len(jobs)
    stats.setup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if workers <= 1:
        _init_worker(plans)
        try:
            done = [_pool_job(job) for job in jobs]
        finally:
            _init_worker([])
    else:
        from concurrent.futures import ProcessPoolExecutor

        # Forked (Linux): the workers inherit pandas, scikit-learn and the prepared rows
        # instead of importing and unpickling them.
        context = pool_context()
        # One worker per core at most: then each is bound to its own core.
        pin = context.Value("i", 0) if workers <= usable_cores() else None
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(plans, pin)) as pool:
            done = list(pool.map(_pool_job, jobs))
    stats.wall_seconds = time.perf_counter() - started
    stats.fit_cpu_seconds = sum(cpu for _, cpu in done)
    scores: list[list[float]] = [[] for _ in plans]
    for (trial, _), (score, _) in zip(jobs, done, strict=True):
        scores[trial].append(score)
    return [_result(plan, s) for plan, s in zip(plans, scores, strict=True)]


def run_trial_on_file(train_path: str | Path, settings: TrainingSettings) -> TrialResult:
    """:func:`run_trial` on the Parquet dataset at ``train_path`` (what the component calls)."""
    from kfp_mlops.data.ingest import read_dataset

    return run_trial(read_dataset(train_path), settings)


def select_best(results: Sequence[TrialResult | str | dict[str, Any]]) -> TrialResult:
    """The trial with the highest finite mean score; ties go to the first listed."""
    trials = [r if isinstance(r, TrialResult) else TrialResult.from_json(r) for r in results]
    if not trials:
        raise DataError("no trial results to choose from; run at least one trial")
    metrics = sorted({t.metric for t in trials})
    if len(metrics) > 1:
        raise DataError(f"trials were scored with different metrics {metrics}; use one metric")
    finite = [t for t in trials if math.isfinite(t.score)]
    if not finite:
        raise DataError(f"all {len(trials)} trials scored NaN or infinity; check the trial logs")
    best = finite[0]
    for trial in finite[1:]:
        if trial.score > best.score:  # strict: an equal later score does not win
            best = trial
    return best


def summarize_trials(results: Sequence[TrialResult], best: TrialResult) -> str:
    """A short Markdown table of every trial, best first marked, for logs and the UI."""
    lines = [f"Best of {len(results)} trials: {best.describe()} with {json.dumps(best.params)}",
             "", "| | score | std | params |", "|---|---|---|---|"]
    for trial in sorted(results, key=lambda t: -t.score if math.isfinite(t.score) else math.inf):
        mark = "best" if trial is best else ""
        lines.append(f"| {mark} | {trial.score:.6g} | {trial.std:.2g} | "
                     f"`{json.dumps(trial.params, sort_keys=True)}` |")
    return "\n".join(lines)
