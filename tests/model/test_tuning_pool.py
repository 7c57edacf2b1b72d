"""Tuning in one process pool (the local shape) vs one task per trial (the cluster shape).

``run_trials`` spreads every (candidate, fold) fit over a process pool; its results must
be exactly ``run_trial``'s, so the chosen parameters do not depend on the shape. The
compiled cluster pipeline keeps the ``dsl.ParallelFor`` fan-out; a local build has one
``run-trials`` task instead.
"""

import json

import pytest

from kfp_mlops.data.sources import load_table
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.tuning import (
    TuningStats,
    make_candidates,
    run_trial,
    run_trials,
    select_best,
    usable_cores,
)

# Chosen parameters and mean scores the code before run_trials gave (run_trial one by
# one, then select_best), per data set, estimator, candidate seed and fold seed.
PINNED = [
    ("iris", "target", "classification", "auto", 4, 5, 11,
     {"l2_regularization": 0.1, "learning_rate": 0.3, "max_iter": 400, "max_leaf_nodes": 63},
     [0.953333, 0.946667, 0.953333, 0.953333]),
    ("breast_cancer", "target", "classification", "logistic_regression", 5, 2, 0,
     {"C": 1.0}, [0.947294, 0.95783, 0.964857, 0.977165, 0.977174]),
    ("diabetes", "target", "regression", "auto", 3, 1, 3,
     {"l2_regularization": 1.0, "learning_rate": 0.03, "max_iter": 100, "max_leaf_nodes": 63},
     [0.40132, 0.270487, 0.418939]),
]


@pytest.mark.parametrize("case", PINNED, ids=[f"{c[0]}-{c[3]}" for c in PINNED])
def test_the_pool_gives_run_trials_results_and_the_same_choice_as_before(case):
    data, target, task, estimator, n_trials, candidate_seed, seed, chosen, scores = case
    frame = load_table(data)
    candidates = make_candidates(TrainingSettings.from_parameters(
        task=task, estimator=estimator, n_trials=n_trials, seed=candidate_seed))
    settings = TrainingSettings.from_parameters(
        target=target, task=task, estimator=estimator, cv_folds=3, seed=seed)
    one_by_one = [run_trial(frame, settings.with_params(c)) for c in candidates]
    stats = TuningStats()
    pooled = run_trials(frame, settings, candidates, workers=2, stats=stats)
    serial = run_trials(frame, settings, candidates, workers=1)
    as_json = [t.to_json() for t in one_by_one]
    assert [t.to_json() for t in pooled] == as_json
    assert [t.to_json() for t in serial] == as_json
    assert select_best(pooled).params == chosen
    assert [t.score for t in pooled] == pytest.approx(scores, abs=1e-6)
    assert (stats.workers, stats.fits) == (2, 3 * len(candidates))
    assert stats.wall_seconds > 0 and stats.fit_cpu_seconds > 0
    assert "fits on 2 processes" in stats.describe()


def test_workers_default_to_the_usable_cores_and_never_exceed_the_fits():
    frame = load_table("iris")
    stats = TuningStats()
    run_trials(frame, TrainingSettings(
        target="target", task="classification", estimator="logistic_regression", cv_folds=2,
        seed=0), ['{"C": 1.0}'], workers=0, stats=stats)
    assert stats.workers == min(usable_cores(), 2)
    stats = TuningStats()
    run_trials(frame, TrainingSettings(
        target="target", task="classification", estimator="logistic_regression", cv_folds=2,
        seed=0), ['{"C": 1.0}'], workers=64, stats=stats)
    assert stats.workers == 2  # two folds, two fits


def test_the_pool_refuses_what_run_trial_refuses():
    from kfp_mlops.errors import DataError

    frame = load_table("iris")
    with pytest.raises(DataError, match="no target column"):
        run_trials(frame, TrainingSettings(target="nope", task="classification"), ["{}"], workers=2)
    with pytest.raises(DataError, match="at least 2 folds"):
        run_trials(frame, TrainingSettings(
            target="target", task="classification", cv_folds=1), ["{}"], workers=2)


def _compiled(pipeline, tmp_path, name):
    import yaml
    from kfp import compiler

    out = tmp_path / f"{name}.yaml"
    compiler.Compiler().compile(pipeline, str(out))
    return out.read_text(), next(yaml.safe_load_all(out.read_text()))  # then platform specs


def _executors(spec):
    return set(spec["deploymentSpec"]["executors"])


def test_the_cluster_pipeline_fans_out_and_the_local_one_pools(tmp_path):
    from kfp_mlops.pipelines.cluster import ClusterConfig
    from kfp_mlops.pipelines.training import build_training_pipeline

    text, cluster = _compiled(build_training_pipeline(ClusterConfig()), tmp_path, "cluster")
    assert "exec-run-trial" in _executors(cluster)
    assert "exec-run-trials" not in _executors(cluster)
    loops = [c for c in cluster["components"].values()
             if "dag" in c and any("parameterIterator" in t for t in c["dag"]["tasks"].values())]
    (loop,) = loops
    (iterating,) = [t for t in loop["dag"]["tasks"].values() if "parameterIterator" in t]
    assert iterating["iteratorPolicy"]["parallelismLimit"] == 8
    assert "parallelismLimit: 8" in text

    _, local = _compiled(build_training_pipeline(None), tmp_path, "local")
    assert "exec-run-trials" in _executors(local)
    assert "exec-run-trial" not in _executors(local)
    assert "parameterIterator" not in json.dumps(local)


def test_an_unknown_trial_shape_is_refused():
    from kfp import dsl

    from kfp_mlops.pipelines.steps import add_tuning_steps

    with pytest.raises(ValueError, match="pods, pool"):

        @dsl.pipeline(name="bad-shape")
        def bad():
            add_tuning_steps(train_data="x", target="y", task="classification",
                             estimator="auto", search_space="auto", n_trials=2, seed=0,
                             params="{}", trials_as="threads")


@pytest.mark.slow
def test_both_shapes_choose_the_same_parameters_under_kfp_local(tmp_path):
    """The pool (local) and ParallelFor (cluster) shapes, both really run by kfp.local.

    The pods shape gathers through the store: each run-trial writes its result under
    the run's fan-in prefix and select-best, after the trial loop's DAG task, reads them.
    """
    from kfp import dsl, local
    from kfp.dsl import Dataset, Output

    from kfp_mlops.components.image import DEFAULT_IMAGE
    from kfp_mlops.pipelines.steps import add_tuning_steps, trial_loop_pipeline

    loop = trial_loop_pipeline(parallelism=2)  # the pods' results go to the store's fan-in
    store = str(tmp_path / "store")

    @dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
    def iris_parquet(dataset: Output[Dataset]):
        from kfp_mlops.data.sources import load_table

        load_table("iris").to_parquet(dataset.path)

    chosen = {}
    for shape in ("pool", "pods"):

        @dsl.pipeline(name=f"tune-{shape}")
        def tune():
            data = iris_parquet()
            add_tuning_steps(
                train_data=data.outputs["dataset"], target="target", task="classification",
                estimator="logistic_regression", search_space='{"C": [0.0001, 0.01, 1.0]}',
                n_trials=3, seed=1, params="{}", trials_as=shape, workers=2,  # noqa: B023
                store=store, trial_loop=loop,
            )

        root = tmp_path / shape
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
                   raise_on_error=True)
        tune()
        (run_dir,) = root.iterdir()
        best = json.loads((next(run_dir.rglob("select-best/executor_output.json"))).read_text())
        chosen[shape] = (best["parameterValues"]["params"], best["parameterValues"]["summary"])
        tasks = {p.parent.name for p in run_dir.rglob("executor_output.json")}
        assert ("run-trials" in tasks) == (shape == "pool")
    assert chosen["pool"] == chosen["pods"]
    assert "Best of 3 trials" in chosen["pool"][1]


def test_the_light_constants_match_train_and_select_best_imports_no_sklearn():
    import subprocess
    import sys

    from kfp_mlops.model import settings, train, tuning

    assert tuning.DEFAULT_ESTIMATOR == train.DEFAULT_ESTIMATOR == settings.DEFAULT_ESTIMATOR
    assert settings.TASKS == tuple(train.ESTIMATORS)
    assert {task: tuple(classes) for task, classes in train.ESTIMATORS.items()} == \
        settings.ESTIMATOR_NAMES
    code = ("import sys; from kfp_mlops.model.tuning import select_best, summarize_trials;"
            "from kfp_mlops.model.settings import BlessingSettings, TrainingSettings;"
            "print(sorted({'sklearn', 'pandas'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
