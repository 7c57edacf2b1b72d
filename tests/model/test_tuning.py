"""Hyperparameter tuning: search spaces, candidates, cross-validated trials, selection."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from kfp_mlops.data.sources import DataError, load_table
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import ESTIMATORS, make_estimator
from kfp_mlops.model.tuning import (
    DEFAULT_SEARCH_SPACES,
    TrialResult,
    grid_size,
    make_candidates,
    parse_search_space,
    run_trial,
    select_best,
    summarize_trials,
)


@pytest.mark.parametrize(
    ("task", "estimator"),
    [(task, name) for task, names in ESTIMATORS.items() for name in names],
)
def test_default_spaces_are_valid_json_for_every_estimator(task, estimator):
    space = parse_search_space("auto", task, estimator)
    assert space == DEFAULT_SEARCH_SPACES[estimator]
    assert json.loads(json.dumps(space)) == space
    known = make_estimator(task, estimator, {}, 0).get_params()
    assert set(space) <= set(known)
    # The estimator's own default is one of the grid's values, so tuning can keep it.
    for name, values in space.items():
        assert known[name] in values, (estimator, name)


def test_auto_means_the_default_estimator():
    default = DEFAULT_SEARCH_SPACES["hist_gradient_boosting"]
    assert parse_search_space("auto", "regression") == default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{max_depth", "not JSON"),
        ("[1, 2]", "non-empty JSON object of lists"),
        ("{}", "non-empty JSON object"),
        ('{"C": [1.0]}', r"'C' is not a parameter of hist_gradient_boosting for .* parameters are"),
        ('{"learning_rate": 0.1}', r"key 'learning_rate': value 0.1 must be a non-empty list"),
        ('{"learning_rate": []}', "non-empty list"),
        ('{"learning_rate": [-1]}', r"learning_rate=-1 is rejected"),
        ('{"max_iter": [100, 100]}', "listed twice"),
        ('{"max_iter": [[1]]}', "not a number, string, bool or null"),
    ],
)
def test_bad_search_space_names_the_key_and_value(text, message):
    with pytest.raises(DataError, match=message):
        parse_search_space(text, "classification", "auto")


def test_search_space_checks_the_chosen_estimator():
    assert parse_search_space('{"alpha": [0.5, 2]}', "regression", "ridge") == {"alpha": [0.5, 2]}
    with pytest.raises(DataError, match="'alpha' is not a parameter of logistic_regression"):
        parse_search_space('{"alpha": [0.5]}', "classification", "logistic_regression")
    with pytest.raises(DataError, match="estimator 'catboost' is not available"):
        parse_search_space("auto", "classification", "catboost")
    with pytest.raises(DataError, match="task 'clustering' is unknown"):
        parse_search_space("auto", "clustering")


def test_candidates_are_seeded_distinct_and_keep_base_params():
    space = {"max_iter": [50, 100, 200], "learning_rate": [0.05, 0.1], "max_depth": [None, 3]}
    first = make_candidates(TrainingSettings.from_parameters(
        task="classification", search_space=space, n_trials=5, seed=7,
        params='{"l2_regularization": 0.5}'))
    assert first == make_candidates(TrainingSettings(
        task="classification", search_space=json.dumps(space), n_trials=5, seed=7,
        params={"l2_regularization": 0.5}))
    assert len(first) == 5
    combos = {json.dumps(c, sort_keys=True) for c in first}
    assert len(combos) == 5
    for candidate in first:
        assert candidate["l2_regularization"] == 0.5
        assert {k: candidate[k] for k in space} in [
            {"max_iter": a, "learning_rate": b, "max_depth": c}
            for a in space["max_iter"] for b in space["learning_rate"] for c in space["max_depth"]
        ]
    assert make_candidates(TrainingSettings(
        task="classification", search_space=space, n_trials=5, seed=8)) != [
        {k: c[k] for k in space} for c in first
    ]


def test_candidates_cover_a_small_grid_once_and_one_trial_means_no_tuning():
    space = {"alpha": [0.1, 1.0, 10.0]}
    every = make_candidates(TrainingSettings(
        task="regression", estimator="ridge", search_space=space, n_trials=10, seed=0))
    assert sorted(c["alpha"] for c in every) == [0.1, 1.0, 10.0]
    assert make_candidates(TrainingSettings.from_parameters(
        task="regression", estimator="ridge", search_space=space, n_trials=1, seed=0,
        params='{"alpha": 3}')) == [{"alpha": 3}]
    assert make_candidates(TrainingSettings(
        task="regression", estimator="ridge", search_space=space, n_trials=0, seed=0)) == [{}]
    with pytest.raises(DataError, match="params key 'C'"):
        make_candidates(TrainingSettings.from_parameters(
            task="regression", estimator="ridge", search_space=space, n_trials=4, seed=0,
            params='{"C": 1}'))


def test_the_grid_wins_over_base_params_on_a_shared_key():
    candidates = make_candidates(TrainingSettings(
        task="regression", estimator="ridge", search_space={"alpha": [5.0]}, n_trials=3, seed=0,
        params={"alpha": 1.0}))
    assert candidates == [{"alpha": 5.0}]


def test_large_grids_are_sampled_without_building_the_product():
    space = {f"p{i}": list(range(10)) for i in range(12)}  # 10**12 combinations
    assert grid_size(space) == 10**12
    # Checked against a real estimator with many parameters: use random_forest's.
    names = ["n_estimators", "max_depth", "min_samples_split", "min_samples_leaf"]
    rf_space = {n: list(range(2, 102)) for n in names}
    candidates = make_candidates(TrainingSettings(
        task="classification", estimator="random_forest", search_space=rf_space, n_trials=3,
        seed=1))
    assert len({json.dumps(c, sort_keys=True) for c in candidates}) == 3


def test_trial_scores_the_training_pipeline_with_stratified_folds():
    frame = load_table("iris")
    trial = run_trial(frame, TrainingSettings.from_parameters(
        target="target", task="classification", estimator="logistic_regression",
        params='{"C": 1.0}', cv_folds=3, seed=0))
    assert trial.metric == "accuracy" and trial.params == {"C": 1.0}
    assert len(trial.fold_scores) == 3 and 0.85 < trial.score <= 1.0
    assert math.isclose(trial.score, float(np.mean(trial.fold_scores)))
    assert math.isclose(trial.std, float(np.std(trial.fold_scores)))
    # A much weaker model scores lower: the score reflects the params.
    weak = run_trial(frame, TrainingSettings(
        target="target", task="classification", estimator="logistic_regression",
        params={"C": 1e-4}, cv_folds=3, seed=0))
    assert weak.score < trial.score
    # The same seed gives the same folds and the same score.
    again = run_trial(frame, TrainingSettings(
        target="target", task="classification", estimator="logistic_regression", params={"C": 1.0},
        cv_folds=3, seed=0))
    assert again.fold_scores == trial.fold_scores


def test_trial_handles_missing_values_and_categorical_columns():
    frame = load_table("penguins")  # NaNs in numbers and in 'sex'; text 'island'
    trial = run_trial(frame, TrainingSettings(
        target="species", task="classification", params={"max_iter": 50}, cv_folds=3, seed=0))
    assert trial.score > 0.9


def test_regression_trial_metrics_follow_the_scorer_convention():
    frame = load_table("diabetes")
    r2 = run_trial(frame, TrainingSettings(
        target="target", task="regression", estimator="ridge", params={"alpha": 1.0}, cv_folds=3,
        seed=0))
    rmse = run_trial(frame, TrainingSettings(
        target="target", task="regression", estimator="ridge", params={"alpha": 1.0}, cv_folds=3,
        seed=0, metric="rmse"))
    assert r2.metric == "r2" and 0.2 < r2.score < 0.7
    assert rmse.metric == "neg_root_mean_squared_error" and -80 < rmse.score < -40
    assert rmse.describe().startswith("rmse 5")  # shown in its own units
    with pytest.raises(DataError, match="metric 'accuracy' cannot score regression"):
        run_trial(frame, TrainingSettings(
            target="target", task="regression", estimator="ridge", params={}, cv_folds=3, seed=0,
            metric="accuracy"))


def test_trial_refuses_too_few_rows_per_class():
    frame = pd.DataFrame({"x": np.arange(20.0), "y": ["a"] * 18 + ["b"] * 2})
    with pytest.raises(DataError, match="class 'b' has 2 rows, fewer than cv_folds=3"):
        run_trial(frame, TrainingSettings(
            target="y", task="classification", params={}, cv_folds=3, seed=0))
    with pytest.raises(DataError, match="at least 2 folds"):
        run_trial(frame, TrainingSettings(
            target="y", task="classification", params={}, cv_folds=1, seed=0))


def test_trial_result_json_round_trip():
    trial = TrialResult({"max_depth": None, "C": 0.1}, 0.9, 0.01, "accuracy", [0.89, 0.91])
    assert TrialResult.from_json(trial.to_json()) == trial
    assert TrialResult.from_json(json.loads(trial.to_json())) == trial
    with pytest.raises(DataError, match="not JSON"):
        TrialResult.from_json("{oops")
    with pytest.raises(DataError, match=r"lacks \['score', 'std'\]"):
        TrialResult.from_json('{"params": {}, "metric": "r2"}')


def test_select_best_prefers_higher_scores_first_on_ties_and_skips_nan():
    a = TrialResult({"a": 1}, 0.8, 0.0, "accuracy")
    b = TrialResult({"b": 1}, 0.9, 0.0, "accuracy")
    c = TrialResult({"c": 1}, 0.9, 0.0, "accuracy")
    nan = TrialResult({"n": 1}, float("nan"), 0.0, "accuracy")
    assert select_best([a, b, c]) is b
    assert select_best([nan, c, b]) is c
    assert select_best([a.to_json(), b.to_json()]).params == {"b": 1}
    neg = [TrialResult({"x": 1}, -60.0, 1, "neg_root_mean_squared_error"),
           TrialResult({"x": 2}, -50.0, 1, "neg_root_mean_squared_error")]
    assert select_best(neg).params == {"x": 2}  # lower rmse wins
    assert "best" in summarize_trials([a, b, c], b).splitlines()[4]
    with pytest.raises(DataError, match="no trial results"):
        select_best([])
    with pytest.raises(DataError, match="all 1 trials scored NaN"):
        select_best([nan])
    with pytest.raises(DataError, match="different metrics"):
        select_best([a, neg[0]])


@pytest.mark.slow
def test_tuning_fans_out_in_a_kfp_local_pipeline(tmp_path):
    """Three candidates fan out with dsl.ParallelFor and come back with dsl.Collected."""
    from kfp import dsl, local
    from kfp.dsl import Dataset, Output

    from kfp_mlops.components.image import DEFAULT_IMAGE
    from kfp_mlops.components.model.train import train as train_op
    from kfp_mlops.components.model.tune import make_candidates as candidates_op
    from kfp_mlops.components.model.tune import run_trial as trial_op
    from kfp_mlops.components.model.tune import select_best as select_op

    @dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
    def iris_parquet(dataset: Output[Dataset]):
        from kfp_mlops.data.sources import load_table

        load_table("iris").to_parquet(dataset.path)

    @dsl.pipeline(name="tune-iris")
    def tune_iris(n_trials: int = 3):
        data = iris_parquet()
        candidates = candidates_op(
            task="classification", estimator="logistic_regression",
            search_space='{"C": [0.0001, 0.01, 1.0, 100.0]}', n_trials=n_trials, seed=1,
        )
        with dsl.ParallelFor(candidates.output, parallelism=2) as params:
            trial = trial_op(
                train_data=data.outputs["dataset"], target="target", task="classification",
                params=params, estimator="logistic_regression", cv_folds=3,
            )
        best = select_op(results=dsl.Collected(trial.output))
        train_op(
            train_data=data.outputs["dataset"], target="target", task="classification",
            estimator="logistic_regression", params=best.outputs["params"],
        )

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path),
               raise_on_error=True)
    tune_iris(n_trials=3)

    # Loop iterations nest one folder deeper: <run>/for-loop-1-iteration-N/run-trial/.
    (run_dir,) = tmp_path.iterdir()
    outputs = {p.parent.relative_to(run_dir).as_posix(): json.loads(p.read_text())
               for p in run_dir.rglob("executor_output.json")}
    trial_outputs = [o["parameterValues"]["Output"] for name, o in outputs.items()
                     if name.endswith("/run-trial")]
    assert len(trial_outputs) == 3
    trials = [TrialResult.from_json(t) for t in trial_outputs]
    assert len({json.dumps(t.params) for t in trials}) == 3
    best = outputs["select-best"]["parameterValues"]
    assert json.loads(best["params"]) == select_best(trials).params
    assert "Best of 3 trials" in best["summary"]
    model_dir = run_dir / "train" / "model"
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["params"] == json.loads(best["params"])
