"""Optional dependencies: say which extra to install instead of a bare ImportError.

kserve is not a base dependency (Apache Airflow 3 and kserve cannot be installed in one
environment), so the paths that serve a model check for it first. Import-free.
"""

from __future__ import annotations

import importlib.util

from kfp_mlops.errors import KfpMlopsError

SERVING_INSTALL = "pip install 'kfp-mlops[serving]'"


class MissingExtraError(KfpMlopsError, ImportError):
    """A feature needs an optional dependency that is not installed; the message says which."""


def missing_kserve(action: str) -> MissingExtraError:
    """The error for ``action`` (e.g. ``kfp-mlops serve``) when kserve is not installed."""
    return MissingExtraError(
        f"{action} needs KServe, which is not installed in this environment "
        f"({_where()}); install the serving extra: {SERVING_INSTALL}. "
        "(It is left out of the base install because Apache Airflow 3 and kserve cannot "
        "be installed together: keep serving and Airflow in separate environments.)"
    )


def require_kserve(action: str) -> None:
    """Raise :class:`MissingExtraError` naming the fix unless ``kserve`` can be imported."""
    try:
        found = importlib.util.find_spec("kserve") is not None
    except (ImportError, ValueError):  # a broken install, or sys.modules["kserve"] = None
        found = False
    if not found:
        raise missing_kserve(action)


def _where() -> str:
    import sys

    return sys.prefix
