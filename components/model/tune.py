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
    import logging

    from kfp_mlops.model import steps
    from kfp_mlops.model.settings import TrainingSettings

    log = logging.getLogger("kfp_mlops.components.model.make_candidates")
    candidates = steps.make_candidates(TrainingSettings.from_parameters(
        task=task, estimator=estimator, search_space=search_space, n_trials=n_trials,
        seed=seed, params=params))
    for candidate in candidates:
        log.info(candidate)
    return candidates


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

    from kfp_mlops.model import steps
    from kfp_mlops.model.settings import TrainingSettings

    log = logging.getLogger("kfp_mlops.components.model.run_trial")
    result, where = steps.run_trial(train_data.path, TrainingSettings.from_parameters(
        target=target, task=task, estimator=estimator, params=params, cv_folds=cv_folds,
        seed=seed, metric=metric), params, store, run_id)
    log.info("%s %s", result.describe(), params)
    if where is not None:
        log.info("-> %s", where)
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

    from kfp_mlops.model import steps
    from kfp_mlops.model.settings import TrainingSettings

    log = logging.getLogger("kfp_mlops.components.model.run_trials")
    settings = TrainingSettings.from_parameters(
        target=target, task=task, estimator=estimator, cv_folds=cv_folds, seed=seed,
        metric=metric)
    results, timing = steps.run_trials(train_data.path, settings, candidates, workers)
    for result in results:
        log.info("%s %s", result.describe(), result.params)
    log.info(timing)
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

    from kfp_mlops.model import steps

    log = logging.getLogger("kfp_mlops.components.model.select_best")
    best, summary = steps.select_best(results, candidates, store, run_id)
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
