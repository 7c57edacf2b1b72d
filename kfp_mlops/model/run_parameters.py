"""A training run's parameters, declared once: name, type, default and description.

Every layer spells a run's parameters in its own form: the pipelines' signatures (what
KFP shows in the dashboard, with the docstring's text as each parameter's description),
the CLI's flags, the Airflow DAG's params, and the arguments ``submit`` / ``schedule``
check against the compiled pipeline. This table is where a parameter is declared: the
pipelines' docstrings (:func:`pipeline_docstring`) and the Airflow params are built from
it, and ``tests/test_settings_declared_once.py`` checks every signature (CLI flags,
pipelines, components, Airflow) against it. The defaults of settings come from the
settings objects (:class:`TrainingSettings`, :class:`BlessingSettings`), in the
parameter form ("auto" for "choose", JSON text for ``params``), so a default changed
there changes everywhere.

No pandas, scikit-learn or KFP import: the CLI and the pipelines read it at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kfp_mlops.data.bundled import DEFAULT_DATASET
from kfp_mlops.model.settings import TASKS, BlessingSettings, TrainingSettings, shown

_TRAINING = TrainingSettings()
_BLESSING = BlessingSettings()


class _LayerDefault:
    """The default of a parameter each layer sets itself.

    ``store``: a cluster bucket in a compiled pipeline, ``$KFP_MLOPS_STORE`` or
    ./mlops-store on a laptop, ``$KFP_MLOPS_STORE`` on an Airflow worker.
    """

    def __repr__(self) -> str:
        return "LAYER_DEFAULT"


LAYER_DEFAULT: Any = _LayerDefault()


@dataclass(frozen=True)
class RunParameter:
    """One run parameter, in the form pipelines and schedulers pass it.

    ``kind`` is the type of the pipeline parameter (``str``, ``int``, ``float``,
    ``bool``); ``default`` its default (:data:`LAYER_DEFAULT`: each layer's own);
    ``description`` the dashboard's text (newlines as the docstring breaks its lines);
    ``setting`` the settings field it fills (``training.seed``, ``blessing.metric``),
    empty for a parameter no settings object carries; ``choices`` the values a form may
    offer (empty: free text).
    """

    name: str
    kind: type
    default: Any
    description: str
    setting: str = ""
    choices: tuple[str, ...] = ()


def _parameters(*parameters: RunParameter) -> dict[str, RunParameter]:
    return {p.name: p for p in parameters}


RUN_PARAMETERS: dict[str, RunParameter] = _parameters(
    RunParameter(
        "data", str, DEFAULT_DATASET,
        "CSV or Parquet URI (s3://bucket/key or a path in the image), or a\n"
        "bundled data set: penguins, breast_cancer, wine, iris, diabetes.",
    ),
    RunParameter(
        "target", str, shown(_TRAINING.target),
        "Target column; auto takes the bundled set's own.", "training.target",
    ),
    RunParameter(
        "task", str, shown(_TRAINING.task),
        "classification or regression; auto infers it from the target.", "training.task",
        choices=(shown(None), *TASKS),
    ),
    RunParameter(
        "store", str, LAYER_DEFAULT,
        "Store URI for datasets, schemas and the model registry (s3://bucket/prefix).",
    ),
    RunParameter(
        "model_name", str, "auto",
        "Registry name, also the InferenceService name; auto derives it\n"
        "from the data's name.",
    ),
    RunParameter(
        "estimator", str, shown(_TRAINING.estimator),
        "hist_gradient_boosting, random_forest, logistic_regression,\n"
        "ridge, xgboost, lightgbm, or an import path (xgboost.XGBClassifier,\n"
        "pkg.module:Class); auto picks hist_gradient_boosting.",
        "training.estimator",
    ),
    RunParameter(
        "params", str, _TRAINING.params_json,
        'Estimator parameters as a JSON object, e.g. {"max_iter": 200}.', "training.params",
    ),
    RunParameter(
        "test_size", float, _TRAINING.test_size,
        "Share of labelled rows held out for evaluation (0-1).", "training.test_size",
    ),
    RunParameter(
        "seed", int, _TRAINING.seed,
        "Seed of the split, the estimator and the tuning search.", "training.seed",
    ),
    RunParameter(
        "quality_metric", str, shown(_BLESSING.metric),
        "Metric of the model gate; auto is accuracy or r2.", "blessing.metric",
    ),
    RunParameter(
        "quality_threshold", str, shown(_BLESSING.threshold),
        "The gate's minimum for that metric; auto is 0.7 accuracy\nor 0.2 r2.",
        "blessing.threshold",
    ),
    RunParameter(
        "blessing_policy", str, shown(_BLESSING.policy),
        "A full gate policy, e.g. accuracy>=0.8,f1_macro>=0.7;tolerance=0.01;\n"
        "replaces the two above; auto builds one from them.",
        "blessing.policy",
    ),
    RunParameter(
        "update_schema", bool, False,
        "Re-infer and store the data schema instead of validating against it.",
    ),
    RunParameter(
        "warn_only", bool, False,
        "Let the data gate record anomalies without stopping training.",
    ),
    RunParameter(
        "namespace", str, "",
        "Kubernetes namespace of the InferenceService; empty promotes in\n"
        "the registry only.",
    ),
    RunParameter(
        "canary_traffic_percent", int, 0,
        "Traffic share (1-99) for the new revision before\n"
        "promotion; 0 rolls out at once.",
    ),
    RunParameter(
        "n_trials", int, _TRAINING.n_trials,
        "Tuning candidates cross-validated in parallel before training; 0\n"
        "or 1 trains with params as given.",
        "training.n_trials",
    ),
    RunParameter(
        "search_space", str, shown(_TRAINING.search_space),
        "Tuning grid as JSON; auto is one grid per estimator.", "training.search_space",
    ),
    RunParameter(
        "force_new_version", bool, False,
        "Publish even when a published version was trained from the\n"
        "same data, settings and code (otherwise nothing new is published).",
    ),
    RunParameter(
        "model_registry", str, "",
        "Kubeflow Model Registry to register versions, stages and the\n"
        "InferenceService in, e.g. http://model-registry-service.kubeflow.svc.cluster.local:8080\n"
        "(kubeflow: that service); empty: none. Unreachable: the store still publishes.",
    ),
    # Continuous training: the monitoring steps before the retraining.
    RunParameter("force", bool, False, "Retrain even when the batch did not drift."),
    RunParameter(
        "drift_share", float, 0.5, "Share of drifted features (0-1) that counts as drift.",
    ),
    RunParameter(
        "pushgateway", str, "",
        "Prometheus Pushgateway host:port for the drift gauges; empty: none.",
    ),
    RunParameter(
        "estimated_drop", float, 0.0,
        "Retrain when accuracy (MAE for regression) is estimated this\n"
        "much worse than on the version's test rows (0.05); 0: drift alone decides.",
    ),
)


def settings_parameters(kind: str) -> dict[str, RunParameter]:
    """The run parameters that fill ``kind``'s settings (``training``, ``blessing``)."""
    return {n: p for n, p in RUN_PARAMETERS.items() if p.setting.startswith(f"{kind}.")}


def parameter_value(declared: RunParameter, value: Any) -> Any:
    """A setting's value in its parameter's form.

    ``None`` ("choose") is ``"auto"``, an object JSON text, a number for a text
    parameter (``quality_threshold``) its text: :meth:`TrainingSettings.from_parameters`
    and :meth:`BlessingSettings.from_parameters` read each back.
    """
    if value is None:
        return shown(None)
    if isinstance(value, dict):
        return json.dumps(value)
    if declared.kind is str and not isinstance(value, str):
        return str(value)
    return value


def settings_arguments(training: TrainingSettings, blessing: BlessingSettings) -> dict[str, Any]:
    """Every run parameter that a settings field fills, as the pipelines take it."""
    objects = {"training": training, "blessing": blessing}
    arguments = {}
    for name, declared in RUN_PARAMETERS.items():
        if declared.setting:
            kind, field = declared.setting.split(".")
            arguments[name] = parameter_value(declared, getattr(objects[kind], field))
    return arguments


def default(name: str) -> Any:
    """The declared default of run parameter ``name`` (for a signature's ``= ...``)."""
    return RUN_PARAMETERS[name].default


def pipeline_docstring(summary: str, names: list[str], **own: str) -> str:
    """A pipeline's docstring: ``summary`` and an ``Args:`` section KFP parses.

    KFP (2.x, ``component_factory.extract_component_interface``) reads the function's
    docstring with ``docstring_parser`` and puts each argument's text into the compiled
    IR as the parameter's ``description``, which the dashboard shows on the run form.
    The text of a parameter is the table's unless the pipeline means something of its
    own by it (``own``: continuous training's ``data`` is the new batch).
    """
    unknown = sorted(set(own) - set(names))
    if unknown:
        raise ValueError(f"descriptions given for {unknown}, which the pipeline does not take")
    lines = [summary, "", "Args:"]
    for name in names:
        text = own[name] if name in own else RUN_PARAMETERS[name].description
        first, *rest = text.split("\n")
        lines.append(f"    {name}: {first}")
        lines += [f"        {line}" for line in rest]
    return "\n".join(lines) + "\n"


def described(summary: str, **own: str):
    """Decorator under ``@dsl.pipeline``: the docstring from :func:`pipeline_docstring`.

    Applied first (decorators apply bottom-up), so KFP reads the generated text. The
    function keeps the names it describes itself as ``own_descriptions`` (the check of
    every pipeline's descriptions reads them).
    """
    import inspect

    def decorate(func):
        names = list(inspect.signature(func).parameters)
        func.__doc__ = pipeline_docstring(summary, names, **own)
        func.own_descriptions = frozenset(own)
        return func

    return decorate
