"""Every public exception of the suite is a KfpMlopsError (the one the CLI catches).

Found by walking the package's modules, not from a hand list, so a new error class
that forgets the base fails here rather than as a traceback in front of a user.
"""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import kfp_mlops
import kfp_mlops.app
import kfp_mlops.components
import kfp_mlops.pipelines
from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.extras import MissingExtraError

# Control flow inside one function, never raised to a caller.
CONTROL_FLOW = {
    # a CSV read restarts with the column's type widened (data.sources.stream_csv)
    "kfp_mlops.data.sources.ColumnTypeTooNarrow",
}
# Modules that need an extra this environment may lack (apache-airflow; kserve raises
# MissingExtraError) are checked from their source when they cannot be imported.
OPTIONAL = {"airflow", "kserve"}


def _modules():
    """(name, module or None, path) of every module of the four layers."""
    found = []
    for package in (kfp_mlops, kfp_mlops.components, kfp_mlops.pipelines, kfp_mlops.app):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            try:
                module = importlib.import_module(info.name)
            except ImportError as exc:
                missing = (exc.name or "").split(".")[0]
                if missing not in OPTIONAL and not isinstance(exc, MissingExtraError):
                    raise
                module = None
            path = Path(info.module_finder.path) / info.name.rsplit(".", 1)[-1]
            found.append((info.name, module, path / "__init__.py" if info.ispkg
                          else path.with_suffix(".py")))
    return found


MODULES = _modules()


def _exception_classes():
    for name, module, _ in MODULES:
        if module is None:
            continue
        for cls_name, cls in vars(module).items():
            defined_here = inspect.isclass(cls) and cls.__module__ == name
            if defined_here and issubclass(cls, BaseException) and not cls_name.startswith("_"):
                yield f"{name}.{cls_name}", cls


def test_the_walk_finds_the_known_families():
    found = dict(_exception_classes())
    # A sanity check of the walk itself (a broken walk would pass the test below).
    for known in ("kfp_mlops.storage.base.NotFoundError",
                  "kfp_mlops.app.commands.common.CliError",
                  "kfp_mlops.extras.MissingExtraError", "kfp_mlops.model.registry.RegistryError"):
        assert known in found
    assert len(found) >= 25


def test_every_public_exception_is_a_kfp_mlops_error():
    # Warnings (kfp_mlops.components.image.ImagePullWarning) are issued, never raised.
    strays = sorted(
        name for name, cls in _exception_classes()
        if name not in CONTROL_FLOW and not issubclass(cls, (KfpMlopsError, Warning))
    )
    assert not strays, f"derive these from kfp_mlops.errors.KfpMlopsError: {strays}"


def test_control_flow_exceptions_are_not_user_errors():
    found = dict(_exception_classes())
    for name in CONTROL_FLOW:
        assert name in found, f"{name} is gone: drop it from CONTROL_FLOW"
        assert not issubclass(found[name], KfpMlopsError)


def test_modules_that_cannot_be_imported_define_no_stray_error():
    # Without the extra, read the source: a class named like an error must name one
    # of the suite's errors among its bases.
    suite = {cls.__name__ for _, cls in _exception_classes()} | {"KfpMlopsError"}
    strays = []
    for name, module, path in MODULES:
        if module is not None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            errorlike = isinstance(node, ast.ClassDef) and node.name.endswith(
                ("Error", "Exception"))
            if errorlike and not node.name.startswith("_"):
                bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
                if not bases & suite:
                    strays.append(f"{name}.{node.name}")
    assert not strays, f"derive these from kfp_mlops.errors.KfpMlopsError: {strays}"


def test_built_in_bases_callers_catch_are_kept():
    from kfp_mlops.data.schema import SchemaError
    from kfp_mlops.errors import DataError
    from kfp_mlops.model.blessing import PolicyError
    from kfp_mlops.storage import StoreError

    # `except ValueError` / `except ImportError` callers keep working.
    assert issubclass(DataError, ValueError) and issubclass(SchemaError, ValueError)
    assert issubclass(PolicyError, ValueError) and issubclass(StoreError, RuntimeError)
    assert issubclass(MissingExtraError, ImportError)
