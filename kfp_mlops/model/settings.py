"""Training and blessing settings: built once at a boundary, passed whole, defaults here.

The CLI builds them from its flags, each KFP component and Airflow step from its
primitive parameters (:meth:`TrainingSettings.from_parameters`), and the core takes
the object instead of a list of loose arguments. Every default lives in this module; the
model gate's are the blessing policy's own (:mod:`kfp_mlops.model.blessing`), handed on
from here.

``"auto"`` (or an empty string) is the user-facing word for "choose for me", because
pipeline parameters cannot default to ``None`` (kfp.local 2.17); inside, "choose" is
``None``, and :func:`chosen` is the one place that maps one to the other.

No pandas or scikit-learn import: the CLI and the light tasks build settings at start-up.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from kfp_mlops.errors import DataError
from kfp_mlops.model.blessing import (  # the model gate's defaults, handed on from here
    DEFAULT_METRIC,  # noqa: F401
    DEFAULT_THRESHOLD,  # noqa: F401
    DEFAULT_TOLERANCE,
    LOWER_IS_BETTER,  # noqa: F401
    BlessingPolicy,
    default_spec,
)

AUTO = "auto"
TASKS = ("classification", "regression")
# Estimator names per task; kfp_mlops.model.train maps each to its scikit-learn class.
ESTIMATOR_NAMES: dict[str, tuple[str, ...]] = {
    "classification": ("hist_gradient_boosting", "random_forest", "logistic_regression"),
    "regression": ("hist_gradient_boosting", "random_forest", "ridge"),
}
DEFAULT_ESTIMATOR = "hist_gradient_boosting"
# The metrics evaluation reports per task (kfp_mlops.model.evaluate): roc_auc for two
# classes, roc_auc_ovr for more; log_loss and the AUCs need probabilities.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro",
                       "recall_macro", "log_loss", "roc_auc", "roc_auc_ovr"),
    "regression": ("r2", "rmse", "mae"),
}


class UnknownMetricError(DataError):
    """A gate metric the task does not report: a usage error, found before any work."""


def chosen(value: Any) -> Any:
    """``None`` where the user left the choice to us (``None``, ``""``, ``"auto"``)."""
    if value is None or (isinstance(value, str) and value.strip() in ("", AUTO)):
        return None
    return value


def shown(value: Any) -> Any:
    """The parameter form of a setting: ``"auto"`` for ``None`` (see :func:`chosen`)."""
    return AUTO if value is None else value


def parse_params(params: str | dict[str, Any] | None) -> dict[str, Any]:
    """Estimator parameters from a JSON object string (CLI and pipeline parameter form)."""
    if params is None or params == "":
        return {}
    if isinstance(params, dict):
        return dict(params)
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as exc:
        raise DataError(f"estimator params {params!r} are not a JSON object: {exc.msg}") from None
    if not isinstance(parsed, dict):
        raise DataError(
            f"estimator params {params!r} must be a JSON object like {{\"max_depth\": 3}}"
        )
    return parsed


def check_task(task: str) -> None:
    """Refuse a task other than classification or regression."""
    if task not in TASKS:
        raise DataError(f"task {task!r} is unknown; use one of {', '.join(TASKS)}")


def check_estimator(estimator: str | None, task: str | None) -> None:
    """Refuse an estimator name the task (or, task unknown yet, every task) lacks.

    An alias (``xgboost``, ``lightgbm``) or import path (``xgboost.XGBClassifier``,
    ``pkg.mod:Class``) is imported and checked here, so a missing package or a class
    that is not an estimator stops the command before any task runs
    (:mod:`kfp_mlops.model.estimators`).
    """
    if estimator is None:
        return
    from kfp_mlops.model.estimators import ALIASES, is_external, load_class

    if is_external(estimator):
        load_class(estimator, task)
        return
    if task is not None:
        choices = ESTIMATOR_NAMES[task]
        if estimator not in choices:
            raise DataError(
                f"estimator {estimator!r} is not available for {task}; choose one of "
                f"{', '.join([AUTO, *choices, *ALIASES])} or an import path such as "
                "xgboost.XGBClassifier"
            )
        return
    every = list(dict.fromkeys(n for names in ESTIMATOR_NAMES.values() for n in names))
    if estimator not in every:
        raise DataError(
            f"estimator {estimator!r} is not available; choose one of "
            f"{', '.join([AUTO, *every, *ALIASES])} or an import path such as "
            "xgboost.XGBClassifier (module.Class or module:Class)"
        )


@dataclass(frozen=True)
class TrainingSettings:
    """What to train and how: one object from the boundary to the core.

    ``None`` means "choose": ``target`` and ``task`` are settled from the data by
    check-data (the core functions that fit need them set, see :meth:`fitting`),
    ``estimator`` is :data:`DEFAULT_ESTIMATOR` (plus the many-classes budget),
    ``search_space`` the estimator's default grid, ``metric`` accuracy or r2.
    ``params`` is never mutated.
    """

    target: str | None = None
    task: str | None = None
    estimator: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42  # of the split, the estimator, the folds and the tuning search
    test_size: float = 0.2
    n_trials: int = 0  # 0 or 1: no tuning
    search_space: str | dict[str, Any] | None = None  # JSON grid, checked by tuning
    cv_folds: int = 3
    metric: str | None = None  # the tuning score

    def __post_init__(self) -> None:
        if self.task is not None:
            check_task(self.task)
        check_estimator(self.estimator, self.task)
        if not isinstance(self.params, dict):
            raise DataError(
                f"estimator params {self.params!r} must be a JSON object like "
                '{"max_depth": 3}'
            )
        if not 0.0 < self.test_size < 1.0:
            raise DataError(f"test_size {self.test_size} must be between 0 and 1 (e.g. 0.2)")
        if self.cv_folds < 2:
            raise DataError(
                f"cv_folds is {self.cv_folds}; cross-validation needs at least 2 folds"
            )

    @classmethod
    def from_parameters(cls, **values: Any) -> TrainingSettings:
        """Settings from primitive values (flags, KFP or Airflow parameters).

        ``"auto"`` and ``""`` become ``None``, ``params`` may be JSON text, numbers may
        be strings; unnamed fields, and numbers given as ``None``, keep their defaults.
        """
        for name in ("target", "task", "estimator", "search_space", "metric"):
            if name in values:
                values[name] = chosen(values[name])
        if "params" in values:
            values["params"] = parse_params(values["params"])
        for name, kind in (("seed", int), ("n_trials", int), ("cv_folds", int),
                           ("test_size", float)):
            if name in values and values[name] is None:
                del values[name]  # not given: the default
            elif name in values:
                values[name] = kind(values[name])
        return cls(**values)

    @property
    def params_json(self) -> str:
        """``params`` as the JSON object text the pipeline parameters carry."""
        return json.dumps(self.params)

    def with_params(self, params: str | dict[str, Any] | None) -> TrainingSettings:
        """A copy with other estimator parameters (one tuning candidate)."""
        return dataclasses.replace(self, params=parse_params(params))

    def fitting(self) -> tuple[str, str]:
        """``(target, task)``, which fitting needs settled."""
        if self.target is None or self.task is None:
            raise DataError(
                f"training needs a target and a task (target={self.target!r}, "
                f"task={self.task!r}); check-data settles them from the data"
            )
        return self.target, self.task


@dataclass(frozen=True)
class BlessingSettings:
    """The model gate's policy: one metric rule, or a full policy that replaces it.

    ``metric`` ``None``: the task's :data:`DEFAULT_METRIC`; ``threshold`` ``None``: its
    :data:`DEFAULT_THRESHOLD` (another metric needs one). A rule is
    ``metric>=threshold~tolerance`` (``<=`` for error metrics): meet the threshold and be
    at most ``tolerance`` worse than the champion. ``policy`` is the compact form of
    :mod:`kfp_mlops.model.blessing`, checked here.
    """

    metric: str | None = None
    threshold: float | None = None
    policy: str | None = None
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.policy is not None:
            BlessingPolicy.parse(self.policy)  # a malformed policy fails here, named

    @classmethod
    def from_parameters(
        cls, metric: Any = None, threshold: Any = None, policy: Any = None
    ) -> BlessingSettings:
        """Settings from the primitive form (``"auto"``/``""``: choose; text numbers)."""
        threshold = chosen(threshold)
        if threshold is not None:
            try:
                threshold = float(threshold)
            except ValueError:
                raise DataError(
                    f"quality threshold {threshold!r} is not a number; use e.g. 0.8"
                ) from None
        policy = chosen(policy)
        return cls(chosen(metric), threshold, None if policy is None else str(policy))

    def metrics(self) -> list[str]:
        """The metrics this gate judges (``None`` in the list: the task's default)."""
        if self.policy is not None:
            return [rule.metric for rule in BlessingPolicy.parse(self.policy).rules]
        return [] if self.metric is None else [self.metric]

    def check_reported(self, task: str | None) -> None:
        """Refuse a metric ``task`` (unknown: any task) does not report, naming the usable ones.

        Found before any task runs: otherwise every step trains and the gate stops at
        the end, or the "identical model" check answers first and the typo goes unseen.
        """
        tasks = [task] if task is not None else list(TASK_METRICS)
        usable = list(dict.fromkeys(m for t in tasks for m in TASK_METRICS[t]))
        for metric in self.metrics():
            if metric not in usable:
                for_what = f"{task} reports" if task is not None else "evaluation reports"
                raise UnknownMetricError(
                    f"metric {metric!r} is not one {for_what}; use one of {', '.join(usable)}"
                )

    def spec(self, task: str) -> str:
        """The compact policy string for ``task``: ``policy``, else the one metric rule."""
        if self.policy is not None:
            return self.policy
        return default_spec(task, self.metric, self.threshold, self.tolerance)

    def policy_for(self, task: str) -> BlessingPolicy:
        """The parsed policy for ``task``."""
        return BlessingPolicy.parse(self.spec(task))
