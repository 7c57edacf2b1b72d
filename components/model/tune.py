from typing import List, NamedTuple, Optional  # noqa: UP035 (as the KFP docs write it)

from kfp import dsl
from kfp.dsl import Dataset, Input

from kfp_mlops.components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def make_candidates(
    task: str,
    estimator: str = "auto",
    search_space: str = "auto",
    n_trials: int = 4,
    seed: int = 42,
    params: str = "{}",
) -> List[str]:  # noqa: UP006
    """Sample parameter sets to try; fan out over them with ``dsl.ParallelFor``.

    Args:
        task: ``classification`` or ``regression``.
        estimator: ``auto`` (hist_gradient_boosting), ``random_forest``,
            ``logistic_regression`` (classification), ``ridge`` (regression), ``xgboost``,
            ``lightgbm``, or an import path (``xgboost.XGBClassifier``).
        search_space: ``auto`` (the estimator's default grid) or a JSON object of
            parameter -> list of values, e.g. ``{"max_depth": [3, 5, 8]}``.
        n_trials: How many distinct combinations to sample (1: no tuning, just ``params``).
        seed: Seed of the sampling.
        params: Fixed estimator parameters (JSON object) every candidate starts from.

    Returns:
        One JSON object string of estimator parameters per candidate.

    """
    import json
    import logging

    from kfp_mlops.model.settings import TrainingSettings
    from kfp_mlops.model.tuning import make_candidates as sample

    log = logging.getLogger("kfp_mlops.components.model.make_candidates")
    candidates = sample(TrainingSettings.from_parameters(
        task=task, estimator=estimator, search_space=search_space, n_trials=n_trials,
        seed=seed, params=params))
    for candidate in candidates:
        log.info(json.dumps(candidate, sort_keys=True))
    return [json.dumps(c, sort_keys=True) for c in candidates]


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def run_trial(
    train_data: Input[Dataset],
    target: str,
    task: str,
    params: str,
    estimator: str = "auto",
    cv_folds: int = 3,
    seed: int = 42,
    metric: str = "auto",
    store: str = "",
    run_id: str = "",
) -> str:
    """Cross-validate the training Pipeline with one parameter set.

    On a cluster (``store`` and ``run_id`` given) the result is also written to the
    store's fan-in prefix, where ``select-best`` reads it: KFP before 2.14 cannot hand
    a loop's outputs to a later task (``kfp_mlops.fanin``).

    Args:
        train_data: Training rows (Parquet).
        target: Target column.
        task: ``classification`` or ``regression``.
        params: Estimator parameters as a JSON object (one ``make_candidates`` item).
        estimator: Estimator name, as for ``train``.
        cv_folds: Number of cross-validation folds (stratified for classification).
        seed: Seed of the folds and the estimator; keep it equal across trials.
        metric: ``auto`` (accuracy, or r2 for regression), ``balanced_accuracy``,
            ``f1_macro``, ``roc_auc``, ``log_loss``, ``rmse`` or ``mae``.
        store: Store URI for the fan-in prefix; empty: the result is only returned.
        run_id: The run's id (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``), naming the prefix.

    Returns:
        The trial result as JSON: params, score (higher is better), std, metric.

    """
    import logging

    from kfp_mlops.fanin import item_name, put_text
    from kfp_mlops.model.settings import TrainingSettings
    from kfp_mlops.model.tuning import run_trial_on_file

    log = logging.getLogger("kfp_mlops.components.model.run_trial")
    result = run_trial_on_file(train_data.path, TrainingSettings.from_parameters(
        target=target, task=task, estimator=estimator, params=params, cv_folds=cv_folds,
        seed=seed, metric=metric))
    log.info("%s %s", result.describe(), params)
    if store and run_id:
        log.info("-> %s", put_text(store, run_id, "run-trial", item_name(params),
                                   result.to_json()))
    return result.to_json()


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def run_trials(
    train_data: Input[Dataset],
    target: str,
    task: str,
    candidates: List[str],  # noqa: UP006
    estimator: str = "auto",
    cv_folds: int = 3,
    seed: int = 42,
    metric: str = "auto",
    workers: int = 0,
) -> List[str]:  # noqa: UP006
    """Cross-validate every candidate in one task, the folds spread over a process pool.

    What a local run uses instead of one ``run_trial`` task per candidate: kfp.local
    starts a Python process per task, which imports pandas and scikit-learn again for
    every trial, and runs at most 2 loop iterations at once. Each result equals what
    ``run_trial`` returns for the same candidate.

    Args:
        train_data: Training rows (Parquet).
        target: Target column.
        task: ``classification`` or ``regression``.
        candidates: ``make_candidates``' output: one JSON object of parameters each.
        estimator: Estimator name, as for ``train``.
        cv_folds: Number of cross-validation folds (stratified for classification).
        seed: Seed of the folds and the estimator.
        metric: As for ``run_trial``.
        workers: Processes to fit in, one OpenMP thread each; 0 is every usable core.

    Returns:
        One trial result (JSON, as ``run_trial`` returns it) per candidate, in order.

    """
    import logging

    from kfp_mlops.data.ingest import read_dataset
    from kfp_mlops.model.settings import TrainingSettings
    from kfp_mlops.model.tuning import TuningStats
    from kfp_mlops.model.tuning import run_trials as cross_validate

    log = logging.getLogger("kfp_mlops.components.model.run_trials")
    settings = TrainingSettings.from_parameters(
        target=target, task=task, estimator=estimator, cv_folds=cv_folds, seed=seed,
        metric=metric)
    stats = TuningStats()
    results = cross_validate(read_dataset(train_data.path), settings, candidates, workers,
                             stats)
    for result in results:
        log.info("%s %s", result.describe(), result.params)
    log.info(stats.describe())
    return [result.to_json() for result in results]


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def select_best(
    results: List[str],  # noqa: UP006
    candidates: Optional[List[str]] = None,  # noqa: UP006, UP045
    store: str = "",
    run_id: str = "",
) -> NamedTuple("BestTrial", [("params", str), ("summary", str)]):
    """Pick the trial with the highest cross-validated score (ties: the first).

    On a cluster the trials ran as a loop of ``run-trial`` pods; ``results`` is then
    empty and each candidate's result is read from the store's fan-in prefix, where
    its ``run-trial`` wrote it (``kfp_mlops.fanin``: KFP before 2.14 cannot pass a
    loop's outputs on). A missing result fails the task and names it.

    Args:
        results: ``run-trials``' list (or ``run_trial`` outputs gathered with
            ``dsl.Collected``); empty: read them from the fan-in prefix.
        candidates: ``make_candidates``' list, which orders the results read from the
            store (ties go to the earlier candidate, as in a local run).
        store: Store URI holding the fan-in prefix (with ``run_id``).
        run_id: The run's id (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``), as ``run_trial`` got it.

    Returns:
        params: the best parameters as a JSON object, ready for ``train``'s ``params``;
        summary: a Markdown table of every trial.

    """
    import json
    import logging
    from collections import namedtuple

    from kfp_mlops.fanin import gather_texts, item_name
    from kfp_mlops.model.tuning import TrialResult, summarize_trials
    from kfp_mlops.model.tuning import select_best as choose

    log = logging.getLogger("kfp_mlops.components.model.select_best")
    if not results:
        if not (store and run_id and candidates):
            raise ValueError("select-best got no trial results and no store, run id and "
                             "candidates to read them from; wire run-trials' output, or "
                             "the trial loop's store and dsl.PIPELINE_JOB_ID_PLACEHOLDER")
        results = gather_texts(store, run_id, "run-trial", [item_name(c) for c in candidates])
    trials = [TrialResult.from_json(r) for r in results]
    best = choose(trials)
    summary = summarize_trials(trials, best)
    log.info(summary)
    return namedtuple("BestTrial", ["params", "summary"])(
        json.dumps(best.params, sort_keys=True), summary
    )




@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def fixed_params(params: str = "{}") -> str:
    """Pass the given estimator parameters on (the no-tuning side of ``dsl.OneOf``).

    Args:
        params: Estimator parameters as a JSON object.

    Returns:
        The same JSON.
    """
    return params


COMPONENTS = [make_candidates, run_trial, run_trials, select_best, fixed_params]
