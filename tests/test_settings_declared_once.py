"""A run's settings are declared once: every signature that spells them is checked here.

The declaration is kfp_mlops/model/run_parameters.py (name, type, default, dashboard
description), whose defaults come from the settings objects (TrainingSettings,
BlessingSettings). Checked against it: the pipelines' parameters (every pipeline, with
the descriptions KFP puts in the IR), the components' parameters of the same names,
the steps' TrainingInputs, pipeline_arguments (settings -> arguments), the CLI's flags,
the Airflow DAG's params and steps, and submit/schedule (KfpTarget and the CLI flags
that build it, the arguments checked against the compiled pipeline). A new training
parameter missing from one of them fails here with the place to add it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import pkgutil
import warnings

import pytest

from kfp_mlops.model.run_parameters import (
    LAYER_DEFAULT,
    RUN_PARAMETERS,
    pipeline_docstring,
)
from kfp_mlops.model.settings import BlessingSettings, TrainingSettings, shown

# Settings fields no run parameter carries, and why (a new field must be added to the
# run parameters or here).
NOT_RUN_PARAMETERS = {
    "training.cv_folds": "tuning's folds: a library setting, 3 in every pipeline run",
    "training.metric": "tuning's score: the task's gate metric (accuracy or r2)",
    "blessing.tolerance": "written inside blessing_policy (;tolerance=0.01)",
}
# Component defaults that differ from the run parameter of the same name, and why.
COMPONENT_OWN_DEFAULTS = {
    ("make-candidates", "n_trials"): "a tuning run's own default (4 candidates); the "
    "pipelines always pass n_trials, and call it only for n_trials > 1",
    ("train", "model_name"): "the name recorded in the model's metadata; '' when a "
    "pipeline built before check-data settled one calls it",
}
# Run parameters the local CLI (`kfp-mlops run`) has no flag for: it deploys nothing.
NOT_CLI_FLAGS = {"namespace": "no cluster to deploy to locally",
                 "canary_traffic_percent": "no cluster to deploy to locally",
                 "force": "a flag of `continuous` only", "drift_share": "`continuous` only",
                 "pushgateway": "`continuous` only", "estimated_drop": "`continuous` only"}
KFP_TYPES = {str: "String", int: "Integer", float: "Float", bool: "Boolean"}
SETTINGS = {"training": TrainingSettings(), "blessing": BlessingSettings()}


def _setting_field(path: str) -> dataclasses.Field:
    kind, name = path.split(".")
    fields = {f.name: f for f in dataclasses.fields(type(SETTINGS[kind]))}
    assert name in fields, f"{path} names no field of {type(SETTINGS[kind]).__name__}"
    return fields[name]


def _parameter_form(value):
    """A setting's default as a pipeline parameter carries it."""
    if isinstance(value, dict):
        return TrainingSettings(params=value).params_json
    return shown(value)


# ------------------------------------------------------------------ settings objects


def test_every_settings_field_is_a_run_parameter_or_says_why_not():
    carried = {p.setting for p in RUN_PARAMETERS.values() if p.setting}
    for kind, settings in SETTINGS.items():
        for field in dataclasses.fields(type(settings)):
            path = f"{kind}.{field.name}"
            assert path in carried or path in NOT_RUN_PARAMETERS, (
                f"{path} is neither a run parameter (kfp_mlops/model/run_parameters.py) nor "
                "listed in NOT_RUN_PARAMETERS with a reason"
            )


@pytest.mark.parametrize("name", [n for n, p in RUN_PARAMETERS.items() if p.setting])
def test_a_run_parameters_default_and_type_are_its_settings_own(name):
    declared = RUN_PARAMETERS[name]
    field = _setting_field(declared.setting)
    kind, attribute = declared.setting.split(".")
    assert declared.default == _parameter_form(getattr(SETTINGS[kind], attribute))
    # The annotation (a string: `from __future__ import annotations`) admits the kind;
    # "choose" settings (None) and JSON objects travel as text.
    annotation = str(field.type)
    assert declared.kind.__name__ in annotation or declared.kind is str, (name, annotation)


def test_run_parameters_round_trip_through_the_settings():
    """pipeline_arguments (settings -> parameters) and from_parameters agree, both ways."""
    from kfp_mlops.pipelines.steps import pipeline_arguments
    from kfp_mlops.pipelines.training import build_training_pipeline

    pipeline = build_training_pipeline()
    training = TrainingSettings(target="species", task="classification",
                                estimator="random_forest", params={"max_depth": 3},
                                seed=7, test_size=0.3, n_trials=4,
                                search_space='{"max_depth": [2, 3]}')
    blessing = BlessingSettings(metric="f1_macro", threshold=0.6)
    arguments = pipeline_arguments(pipeline, training, blessing)
    carried = {n: p for n, p in RUN_PARAMETERS.items() if p.setting.startswith("training.")}
    assert TrainingSettings.from_parameters(
        **{n: arguments[n] for n in carried}) == training
    assert BlessingSettings.from_parameters(
        arguments["quality_metric"], arguments["quality_threshold"],
        arguments["blessing_policy"]) == blessing
    defaults = pipeline_arguments(pipeline, TrainingSettings(), BlessingSettings())
    for name, declared in RUN_PARAMETERS.items():
        if declared.setting:
            assert defaults[name] == declared.default, name
            assert isinstance(defaults[name], declared.kind), name


# ------------------------------------------------------------------ pipelines


def _pipelines():
    from kfp_mlops.pipelines import PIPELINES

    return {name: build() for name, build in PIPELINES.items()}


@pytest.fixture(scope="module")
def pipelines():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _pipelines()


def test_every_pipeline_parameter_has_the_declared_type_default_and_a_description(pipelines):
    for pipeline_name, pipeline in pipelines.items():
        own = getattr(pipeline.pipeline_func, "own_descriptions", None)
        for name, spec in pipeline.component_spec.inputs.items():
            where = f"pipeline {pipeline_name!r} parameter {name!r}"
            assert spec.description, f"{where} has no description for the dashboard"
            declared = RUN_PARAMETERS.get(name)
            if declared is None:
                # A pipeline's own parameter (batch scoring's model, keep_columns...): it
                # must say so by describing itself.
                assert own is None or name in own, (
                    f"{where} is neither a run parameter nor described by the pipeline")
                continue
            assert spec.type == KFP_TYPES[declared.kind], where
            if spec.optional and declared.default is not LAYER_DEFAULT:
                assert spec.default == declared.default, (
                    f"{where} defaults to {spec.default!r}, the run parameters say "
                    f"{declared.default!r}: write = default({name!r})")
            if own is not None and name not in own:
                assert spec.description == declared.description, where


def test_described_pipelines_are_the_training_run_ones(pipelines):
    """Training, continuous training and both monitoring pipelines take their text from
    the table; batch scoring's parameters are its own."""
    described = {n for n, p in pipelines.items()
                 if getattr(p.pipeline_func, "own_descriptions", None) is not None}
    assert {"training", "continuous-training", "monitoring", "sharded-monitoring"} <= described


def test_the_generated_docstring_is_what_kfp_parses():
    import docstring_parser

    names = ["data", "model_registry", "seed"]
    parsed = docstring_parser.parse(pipeline_docstring("Summary.", names, data="Mine."))
    got = {p.arg_name: p.description for p in parsed.params}
    assert got == {"data": "Mine.", "model_registry": RUN_PARAMETERS["model_registry"].description,
                   "seed": RUN_PARAMETERS["seed"].description}
    with pytest.raises(ValueError, match="does not take"):
        pipeline_docstring("Summary.", names, seeds="typo")


def test_training_inputs_are_the_training_pipelines_parameters(pipelines):
    from kfp_mlops.pipelines.steps import TrainingInputs

    fields = {f.name: f for f in dataclasses.fields(TrainingInputs)}
    assert set(fields) == set(pipelines["training"].component_spec.inputs)
    monitoring = set(pipelines["monitoring"].component_spec.inputs) | {"force"}
    assert set(pipelines["continuous-training"].component_spec.inputs) - monitoring \
        <= set(fields)
    for name, field in fields.items():
        if field.default is not dataclasses.MISSING:
            assert field.default == RUN_PARAMETERS[name].default, name


def test_add_training_steps_takes_a_few_typed_objects():
    from kfp_mlops.pipelines.steps import add_training_steps

    assert len(inspect.signature(add_training_steps).parameters) <= 4


# ------------------------------------------------------------------ components


def _components():
    from kfp.dsl.base_component import BaseComponent

    import kfp_mlops.components as package

    found = {}
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        for obj in vars(importlib.import_module(module.name)).values():
            if isinstance(obj, BaseComponent):
                found[obj.name] = obj
    return found


def test_component_parameters_named_as_run_parameters_match_them():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        components = _components()
    assert "split-data" in components and "train" in components
    checked = 0
    for component_name, component in sorted(components.items()):
        for name, spec in (component.component_spec.inputs or {}).items():
            declared = RUN_PARAMETERS.get(name)
            if declared is None:
                continue
            where = f"component {component_name!r} parameter {name!r}"
            assert spec.type == KFP_TYPES[declared.kind], where
            if spec.optional and declared.default is not LAYER_DEFAULT and \
                    (component_name, name) not in COMPONENT_OWN_DEFAULTS:
                assert spec.default == declared.default, (
                    f"{where} defaults to {spec.default!r}, the run parameters to "
                    f"{declared.default!r}")
                checked += 1
    assert checked >= 20  # split-data's test_size and seed among them


# ------------------------------------------------------------------ CLI


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from kfp_mlops.app.cli import build_parser

    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings}


@pytest.mark.parametrize("command", ["run", "continuous"])
def test_cli_training_flags_are_run_parameters_of_the_declared_type(command):
    flags = _flags(_subparsers()[command])
    for name, declared in RUN_PARAMETERS.items():
        if name not in flags:
            assert name in NOT_CLI_FLAGS or command == "continuous", (
                f"`kfp-mlops {command}` has no --{name.replace('_', '-')} flag; add it "
                "(app/commands/run.py add_training_flags) or say why in NOT_CLI_FLAGS")
            continue
        action = flags[name]
        if isinstance(action, argparse._StoreTrueAction):
            assert declared.kind is bool and declared.default is False, name
            continue
        accepted = {declared.kind}
        if declared.setting:  # the CLI may parse to the settings' own type (a number)
            accepted.add({"float | None": float}.get(str(_setting_field(declared.setting).type),
                                                     declared.kind))
        parse = action.type or str
        if not isinstance(parse, type):  # a checking parser (--estimated-drop's): its result
            parse = type(parse({float: "0.05", int: "1"}.get(declared.kind, "x")))
        assert parse in accepted, (command, name, action.type)
        # None: not given, the settings decide (and `continuous` reuses a model's first
        # settings); anything else is the declared default.
        assert action.default in (None, declared.default) or \
            declared.default is LAYER_DEFAULT, (command, name, action.default)
        if action.help and "(default " in action.help and declared.kind in (int, float):
            assert f"(default {declared.default}" in action.help, (command, name)


# ------------------------------------------------------------------ Airflow


def test_airflow_params_are_the_training_pipelines_under_the_same_names(pipelines):
    from kfp_mlops.app.airflow.params import (
        DEPRECATED_PARAMS,
        JSON_TYPES,
        OWN_DESCRIPTIONS,
        OWN_PARAMS,
        param_schemas,
    )

    schemas = param_schemas()
    training = pipelines["training"].component_spec.inputs
    for name, schema in schemas.items():
        if name in OWN_PARAMS or name in DEPRECATED_PARAMS:
            continue
        declared = RUN_PARAMETERS[name]
        assert name in training, name
        assert schema["type"] == JSON_TYPES[declared.kind], name
        if declared.default is not LAYER_DEFAULT:
            assert schema["default"] == declared.default, name
        assert schema["description"] == OWN_DESCRIPTIONS.get(name, declared.description)
        if declared.choices:
            assert schema["enum"] == list(declared.choices)
    assert "params" in schemas and DEPRECATED_PARAMS == {"estimator_params": "params"}


def test_airflow_step_defaults_are_the_run_parameters():
    from kfp_mlops.app.airflow import steps

    renamed = {"policy": "blessing_policy"}
    checked = 0
    for function in (steps.check, steps.split, steps.train, steps.bless):
        for name, parameter in inspect.signature(function).parameters.items():
            declared = RUN_PARAMETERS.get(renamed.get(name, name))
            if declared is None or parameter.default is inspect.Parameter.empty:
                continue
            assert parameter.default == declared.default, (function.__name__, name)
            checked += 1
    assert checked == 11  # check 3, split 2, train 3, bless 3


def test_airflows_old_estimator_params_still_work_with_a_warning():
    from kfp_mlops.app.airflow.steps import estimator_params

    assert estimator_params({"params": '{"max_depth": 2}', "estimator_params": None}) == \
        '{"max_depth": 2}'
    with pytest.warns(DeprecationWarning, match="'estimator_params' is deprecated"):
        assert estimator_params({"params": "{}", "estimator_params": '{"C": 2}'}) == '{"C": 2}'
    with pytest.warns(DeprecationWarning):  # both given: the new name wins
        assert estimator_params({"params": '{"C": 3}', "estimator_params": '{"C": 2}'}) == \
            '{"C": 3}'


# ------------------------------------------------------------------ submit / schedule


@pytest.mark.parametrize("command", ["submit", "schedule"])
def test_submit_and_schedule_flags_build_the_kfp_target(command):
    from kfp_mlops.app.automation.submit import KfpTarget, schedule, submit
    from kfp_mlops.app.commands.automation import kfp_target

    flags = _flags(_subparsers()[command])
    from_flag = {"token": "token_file"}  # the flag names the file; the target holds the token
    not_flags = {"connect_timeout_s"}  # Python only
    for field in dataclasses.fields(KfpTarget):
        if field.name not in not_flags:
            assert from_flag.get(field.name, field.name) in flags, (command, field.name)
    args = _subparsers()[command].parse_args(
        ["training", "--host", "http://kfp:8080", "--namespace", "team", "--experiment", "x",
         "--service-account", "runner", *(["--cron", "0 0 3 * * *"] * (command == "schedule"))])
    assert kfp_target(args) == KfpTarget("http://kfp:8080", namespace="team", experiment="x",
                                         service_account="runner")
    function = {"submit": submit, "schedule": schedule}[command]
    assert len(inspect.signature(function).parameters) <= 12


def test_submit_checks_every_run_parameter_against_the_compiled_pipeline(tmp_path):
    """--param names and values: each training run parameter, in its text form, is
    accepted and converted to the declared type; a misspelt one is refused."""
    from kfp_mlops.app.automation.submit import SubmitError, _compile, coerce_arguments
    from kfp_mlops.pipelines.cluster import TaskSettings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        package = _compile("training", tmp_path, TaskSettings(), None, None)
    values = {name: str(declared.default).lower() if declared.kind is bool
              else str(declared.default)
              for name, declared in RUN_PARAMETERS.items()
              if name in package.parameters and declared.default is not LAYER_DEFAULT}
    coerced = coerce_arguments("training", values, package.parameters)
    for name, value in coerced.items():
        assert value == RUN_PARAMETERS[name].default, name
        assert isinstance(value, RUN_PARAMETERS[name].kind), name
    with pytest.raises(SubmitError, match="has no parameter 'sead'"):
        coerce_arguments("training", {"sead": "1"}, package.parameters)


def test_deploy_takes_an_inference_service_spec():
    from kfp_mlops.serving.deploy import InferenceServiceSpec, deploy_model

    parameters = inspect.signature(deploy_model).parameters
    assert list(parameters)[0] == "service" and len(parameters) <= 7
    with pytest.raises(ValueError, match="canary_traffic_percent=100 is out of range"):
        InferenceServiceSpec("m", "ns", "s3://b/m/1", canary_traffic_percent=100)
