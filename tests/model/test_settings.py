"""Training and blessing settings: validated at the boundary, one source for every default."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from kfp_mlops.errors import DataError
from kfp_mlops.model.blessing import PolicyError
from kfp_mlops.model.settings import (
    AUTO,
    DEFAULT_THRESHOLD,
    BlessingSettings,
    TrainingSettings,
    chosen,
)

GOLDEN = Path(__file__).parents[1] / "golden"


@pytest.mark.parametrize("value", [None, "", "auto", " auto "])
def test_auto_and_empty_mean_choose(value):
    assert chosen(value) is None
    settings = TrainingSettings.from_parameters(
        target=value, task=value, estimator=value, search_space=value, metric=value)
    assert (settings.target, settings.task, settings.estimator) == (None, None, None)
    assert settings.search_space is None and settings.metric is None
    assert BlessingSettings.from_parameters(value, value, value) == BlessingSettings()


def test_from_parameters_parses_the_primitive_forms():
    settings = TrainingSettings.from_parameters(
        target="y", task="regression", estimator="ridge", params='{"alpha": 2}', seed="7",
        test_size="0.3", n_trials="5", cv_folds="4")
    assert settings == TrainingSettings(
        target="y", task="regression", estimator="ridge", params={"alpha": 2}, seed=7,
        test_size=0.3, n_trials=5, cv_folds=4)
    assert settings.params_json == '{"alpha": 2}'
    assert settings.with_params('{"alpha": 3}').params == {"alpha": 3}
    assert settings.params == {"alpha": 2}  # copies; the settings never change
    blessing = BlessingSettings.from_parameters("rmse", "40", AUTO)
    assert blessing == BlessingSettings(metric="rmse", threshold=40.0)
    assert blessing.spec("regression") == "rmse<=40~0.01"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"task": "clustering"}, "task 'clustering' is unknown; use one of classification, "
         "regression"),
        ({"task": "regression", "estimator": "logistic_regression"},
         "estimator 'logistic_regression' is not available for regression; choose one of "
         "auto, hist_gradient_boosting, random_forest, ridge"),
        ({"estimator": "catboost"}, "estimator 'catboost' is not available; choose one of auto, "
         "hist_gradient_boosting, random_forest, logistic_regression, ridge"),
        ({"params": "{max_depth"}, "estimator params '{max_depth' are not a JSON object"),
        ({"params": "[3]"}, r"must be a JSON object like \{\"max_depth\": 3\}"),
        ({"test_size": 1.5}, "test_size 1.5 must be between 0 and 1"),
        ({"cv_folds": 1}, "cv_folds is 1; cross-validation needs at least 2 folds"),
    ],
)
def test_training_settings_refuse_bad_values_with_the_fix(values, message):
    with pytest.raises(DataError, match=message):
        TrainingSettings.from_parameters(**values)


def test_blessing_settings_refuse_bad_values_with_the_fix():
    with pytest.raises(DataError, match="quality threshold 'high' is not a number; use e.g. 0.8"):
        BlessingSettings.from_parameters(threshold="high")
    with pytest.raises(PolicyError, match="bad rule 'accuracy>0.8'"):
        BlessingSettings.from_parameters(policy="accuracy>0.8")
    with pytest.raises(DataError, match="give a quality threshold for metric 'f1_macro'"):
        BlessingSettings(metric="f1_macro").spec("classification")


def test_fitting_needs_the_target_and_task_check_data_settles():
    with pytest.raises(DataError, match="training needs a target and a task"):
        TrainingSettings(task="classification").fitting()
    assert TrainingSettings(target="y", task="regression").fitting() == ("y", "regression")


def test_the_fingerprint_records_a_chosen_estimator_as_auto(tmp_path):
    # Versions published before the settings existed recorded "auto": they still match.
    import sklearn

    import kfp_mlops
    from kfp_mlops.model.identity import training_fingerprint
    from kfp_mlops.model.package import sha256_file

    rows = tmp_path / "train.parquet"
    rows.write_bytes(b"rows")
    settings = TrainingSettings(target="y", task="classification", seed=3)
    made_of = {"train_rows_sha256": sha256_file(rows), "target": "y", "task": "classification",
               "estimator": "auto", "params": {"max_iter": 5}, "seed": 3,
               "kfp_mlops": kfp_mlops.__version__, "scikit-learn": sklearn.__version__}
    expected = hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()
    assert training_fingerprint(rows, settings, {"max_iter": 5}) == expected


def _compiled(name: str) -> dict:
    for document in yaml.safe_load_all((GOLDEN / f"{name}.yaml").read_text()):
        if document and "root" in document:
            return document
    raise AssertionError(f"no pipeline spec in {name}.yaml")


def _compiled_defaults(name: str) -> dict:
    parameters = _compiled(name)["root"]["inputDefinitions"]["parameters"]
    return {k: v.get("defaultValue") for k, v in parameters.items()}


@pytest.mark.parametrize("name", ["training", "continuous-training"])
def test_compiled_pipeline_defaults_are_the_settings_defaults(name):
    from kfp_mlops.pipelines.continuous import build_continuous_pipeline
    from kfp_mlops.pipelines.steps import pipeline_arguments
    from kfp_mlops.pipelines.training import build_training_pipeline

    build = build_training_pipeline if name == "training" else build_continuous_pipeline
    arguments = pipeline_arguments(build(), TrainingSettings(), BlessingSettings())
    compiled = _compiled_defaults(name)
    assert arguments, name
    for parameter, value in arguments.items():
        assert compiled[parameter] == value, parameter


def test_cli_and_component_defaults_are_the_settings_defaults():
    from kfp_mlops.app.cli import build_parser
    from kfp_mlops.components.model import bless_model, make_candidates, train
    from kfp_mlops.components.model.tune import run_trial, run_trials

    defaults = TrainingSettings()
    for command in (["run"], ["continuous", "--data", "x.csv", "--model-name", "m"]):
        args = build_parser().parse_args(command)
        assert TrainingSettings.from_parameters(
            target=args.target, task=args.task, estimator=args.estimator, params=args.params,
            test_size=args.test_size, seed=args.seed, n_trials=args.n_trials,
        ) == defaults
        assert BlessingSettings.from_parameters(
            args.quality_metric, args.quality_threshold, args.blessing_policy,
        ) == BlessingSettings()
    # Component signatures hold literals (their source is embedded in the compiled YAML).
    for component in (train, make_candidates, run_trial, run_trials):
        inputs = {k: v.default for k, v in component.component_spec.inputs.items()}
        assert inputs["seed"] == defaults.seed, component.name
        assert chosen(inputs["estimator"]) == defaults.estimator, component.name
        if "cv_folds" in inputs:
            assert inputs["cv_folds"] == defaults.cv_folds, component.name
            assert chosen(inputs["metric"]) == defaults.metric, component.name
        if inputs.get("params") is not None:  # run-trial's is one candidate, no default
            assert json.loads(inputs["params"]) == defaults.params, component.name
    bless = {k: v.default for k, v in bless_model.component_spec.inputs.items()}
    assert BlessingSettings.from_parameters(
        bless["quality_metric"], bless["quality_threshold"], bless["policy"],
    ) == BlessingSettings()


def test_the_default_thresholds_are_what_the_help_and_readme_say():
    from kfp_mlops.app.cli import build_parser

    assert DEFAULT_THRESHOLD == {"classification": 0.7, "regression": 0.2}
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "accuracy >= 0.7, or r2 >= 0.2" in readme
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # noqa: SLF001
    assert "default 0.7 accuracy / 0.2 r2" in run.format_help()
    # The descriptions in the dashboard's run form (pipeline and bless-model component).
    said = f"{DEFAULT_THRESHOLD['classification']} accuracy or {DEFAULT_THRESHOLD['regression']} r2"
    for name in ("training", "continuous-training"):
        spec = _compiled(name)
        root = spec["root"]["inputDefinitions"]["parameters"]["quality_threshold"]
        bless = spec["components"]["comp-bless-model"]["inputDefinitions"]["parameters"]
        for description in (root["description"], bless["quality_threshold"]["description"]):
            assert said in " ".join(description.split()), (name, description)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--estimator", "catboost"], "estimator 'catboost' is not available; choose one of auto"),
        (["--task", "regression", "--estimator", "logistic_regression"],
         "estimator 'logistic_regression' is not available for regression"),
        (["--params", "{max_depth"], "estimator params '{max_depth' are not a JSON object"),
        (["--blessing-policy", "accuracy>0.8"], "bad rule 'accuracy>0.8'"),
    ],
)
def test_the_cli_refuses_bad_settings_before_any_task_runs(tmp_path, capsys, flags, message):
    from kfp_mlops.app.cli import main

    store, runs = tmp_path / "store", tmp_path / "runs"
    assert main(["run", *flags, "--store", str(store), "--runs-dir", str(runs)]) == 1
    assert message in capsys.readouterr().err
    assert not store.exists() and not runs.exists()  # nothing ran, nothing was written
