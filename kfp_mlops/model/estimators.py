"""Estimators named by import path: XGBoost, LightGBM, or any scikit-learn-compatible class.

``--estimator`` takes a built-in short name (``hist_gradient_boosting``, ...), one of the
aliases ``xgboost`` and ``lightgbm`` (the task picks the classifier or the regressor),
or an import path, ``xgboost.XGBClassifier`` or ``mypackage.models:MyRegressor``. The
class goes inside the suite's preprocessing Pipeline like a built-in one, so training,
tuning, evaluation, the card, serving and batch scoring treat it the same.

The package's name and version are recorded in the model's metadata, and the loader
refuses a model whose package is missing or at another version, as it does for
scikit-learn (:func:`check_package`): a pickle is only safe to load beside the code that
wrote it.

Import-light: the class is imported when first asked for, never at module import.
"""

from __future__ import annotations

import importlib
from typing import Any

from kfp_mlops.errors import DataError

# Short names for the two libraries most tabular teams use; the task picks the class.
ALIASES: dict[str, dict[str, str]] = {
    "xgboost": {"classification": "xgboost.XGBClassifier",
                "regression": "xgboost.XGBRegressor"},
    "lightgbm": {"classification": "lightgbm.LGBMClassifier",
                 "regression": "lightgbm.LGBMRegressor"},
}
# The pip extra that installs a package (the message for a missing one names it).
EXTRAS = {"xgboost": "xgboost", "lightgbm": "lightgbm"}


def is_external(name: str | None) -> bool:
    """Whether ``name`` is an alias or an import path (not a built-in short name)."""
    return name is not None and (name in ALIASES or "." in name or ":" in name)


def import_path(name: str, task: str) -> str:
    """The import path ``name`` stands for under ``task`` (an alias resolved)."""
    return ALIASES[name][task] if name in ALIASES else name


def _split(path: str) -> tuple[str, str]:
    module, sep, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not module or not attr or not sep:
        raise DataError(
            f"estimator {path!r} is not an import path; give module.Class or module:Class, "
            "e.g. xgboost.XGBClassifier"
        )
    return module, attr


def _install_hint(package: str) -> str:
    if package in EXTRAS:
        return f"install the extra: pip install 'kfp-mlops[{EXTRAS[package]}]'"
    return f"install the package that provides it (pip install {package})"


def load_class(name: str, task: str | None = None) -> type:
    """The estimator class ``name`` names (alias or import path), checked.

    Refused, with the fix: a package that is not installed (naming the extra), a name
    the module lacks, something that is not a scikit-learn-compatible estimator class
    (``fit``, ``predict``, ``get_params``, ``set_params``), and, ``task`` given, a
    regressor for classification or the other way round.
    """
    if name in ALIASES and task is None:
        name = ALIASES[name]["classification"]
    path = import_path(name, task) if task is not None else name
    module_name, attr = _split(path)
    package = module_name.split(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and package != exc.name.split(".")[0]:
            raise  # the package is there but one of its own imports fails: show it
        raise DataError(
            f"estimator {path!r} needs the package {package!r}, which is not installed in "
            f"this environment; {_install_hint(package)}"
        ) from None
    except OSError as exc:  # a native library it loads is missing
        hint = (" LightGBM needs the OpenMP runtime: apt-get install libgomp1 (Debian), "
                "brew install libomp (macOS)." if package == "lightgbm" else "")
        raise DataError(
            f"importing {module_name!r} for estimator {path!r} failed: {exc}.{hint}"
        ) from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise DataError(f"module {module_name!r} has no {attr!r}; check the estimator {path!r}")
    missing = [m for m in ("fit", "predict", "get_params", "set_params")
               if not callable(getattr(cls, m, None))]
    if not isinstance(cls, type) or missing:
        what = "not a class" if not isinstance(cls, type) else f"lacks {', '.join(missing)}"
        raise DataError(
            f"{path!r} is not a scikit-learn-compatible estimator ({what}); give a class "
            "with fit, predict, get_params and set_params, e.g. xgboost.XGBClassifier"
        )
    if task is not None:
        _check_task(cls, path, task)
    return cls


def _check_task(cls: type, path: str, task: str) -> None:
    from sklearn.base import is_classifier, is_regressor

    try:
        instance = cls()
    except TypeError as exc:
        raise DataError(
            f"{path!r} cannot be built without arguments ({exc}); scikit-learn-compatible "
            "estimators give every parameter a default"
        ) from None
    wrong = (not is_classifier(instance) if task == "classification"
             else not is_regressor(instance))
    if wrong:
        other = ("a regressor" if is_regressor(instance) else
                 "a classifier" if is_classifier(instance) else "neither a classifier nor "
                 "a regressor to scikit-learn")
        raise DataError(
            f"{path!r} is {other}, but the task is {task}; give a "
            f"{'classifier' if task == 'classification' else 'regressor'} "
            f"(e.g. {ALIASES['xgboost'][task]})"
        )


def package_of(estimator: Any) -> tuple[str, str] | None:
    """``(package, version)`` of a fitted estimator's library; None for scikit-learn's own.

    scikit-learn's version is recorded (and checked) on its own.
    """
    from kfp_mlops.model.encoded import LabelEncoded

    if isinstance(estimator, LabelEncoded):
        estimator = estimator.estimator
    package = type(estimator).__module__.split(".")[0]
    if package == "sklearn":
        return None
    return package, package_version(package) or ""


def package_version(package: str) -> str | None:
    """The installed version of ``package`` (its ``__version__``, else its distribution's)."""
    try:
        module = importlib.import_module(package)
    except (ImportError, OSError):  # OSError: a native library it needs is missing
        return None
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib import metadata

    for dist in metadata.packages_distributions().get(package, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_package(package: str | None, version: str | None) -> str | None:
    """Why a model trained with ``package`` ``version`` cannot load here, or None."""
    if not package:
        return None
    installed = package_version(package)
    if installed is None:
        return (f"model was trained with {package} {version} but {package} is not installed "
                f"here (or cannot be imported); {_install_hint(package)} (version {version}), "
                "or serve it with the image that trained it")
    if version and installed != version:
        return (f"model was trained with {package} {version} but {installed} is installed; "
                "serve it with the image that trained it (the suite image with the same "
                "extras) or retrain")
    return None
