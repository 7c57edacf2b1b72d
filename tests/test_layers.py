"""The four layers import one way only: app -> pipelines -> components -> core.

Inside the core (kfp_mlops/) its parts stand on floors too (``CORE_FLOORS``): a module
imports its own part and the floors below, never a floor above nor a neighbour on its
own floor. Every module is checked by the folder it lives in, so a new module is covered
the day it is added (a new part of the core must be given a floor). import-linter cannot
follow setuptools' package-dir mapping (components/, pipelines/ and app/ live outside
kfp_mlops/), so the contracts are checked here from the source with ast, imports inside
functions included.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Folder -> imports its modules must not make: what sits above it, and, for the core,
# the KFP SDK (the core runs in a serving container and in tests without it).
FORBIDDEN = {
    "kfp_mlops": ("kfp", "kfp_mlops.components", "kfp_mlops.pipelines", "kfp_mlops.app"),
    "components": ("kfp_mlops.pipelines", "kfp_mlops.app"),
    "pipelines": ("kfp_mlops.app",),
    "app": (),
}


def test_every_package_folder_is_a_layer():
    mapping = re.search(r"^package-dir = \{(.*)\}$", (ROOT / "pyproject.toml").read_text(), re.M)
    assert set(re.findall(r'= "([^"]+)"', mapping.group(1))) == set(FORBIDDEN)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names |= imported_modules_of(node)
    return names


def imported_modules_of(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module}
    return set()


def python_files(*places: str) -> list[Path]:
    files = []
    for place in places:
        path = ROOT / place
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


LAYERED = [(folder, path) for folder in FORBIDDEN for path in python_files(folder)]


@pytest.mark.parametrize("folder, path", LAYERED, ids=[str(p.relative_to(ROOT)) for _, p in LAYERED])
def test_no_module_imports_a_layer_above_its_own(folder, path):
    bad = {
        m for m in imported_modules(path)
        if any(m == name or m.startswith(name + ".") for name in FORBIDDEN[folder])
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


STORAGE = ROOT / "kfp_mlops" / "storage"


def test_only_storage_knows_the_store_backends():
    """Callers use the Store interface; what differs between backends the store answers
    (exclusive_publish, read_concurrency, list_folded), so nobody asks which one it is."""
    backends = {"LocalStore", "S3Store"}
    offenders = []
    for path in python_files("kfp_mlops", "components", "pipelines"):
        if STORAGE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: set[str] = set()
            if isinstance(node, ast.ImportFrom) and node.module == "kfp_mlops.storage":
                names = {a.name for a in node.names if a.name in backends or a.name[0] == "_"}
            elif isinstance(node, ast.Name) and node.id in backends:
                names = {node.id}
            elif isinstance(node, ast.Attribute) and node.attr in backends:
                names = {node.attr}
            names |= {m for m in imported_modules_of(node) if m.split(".")[0] == "minio"}
            # Only the package's face (kfp_mlops.storage): its modules are its own business.
            names |= {m for m in imported_modules_of(node) if m.startswith("kfp_mlops.storage.")}
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in sorted(names)]
    assert not offenders, offenders



# The core's floors, from the ground up. A part is a subpackage or a top-level module of
# kfp_mlops. Errors at the bottom (every part raises them); small helpers; the store;
# the run-scoped fan-in files (loops write, gatherers read);
# data; models (trained from data, kept in the store); the live loop (the served model's
# prediction log joined with labels, read as data, scored with the registry's model);
# then serving (loads a model, captures its log through the live loop) and monitoring
# (reads data, models and the live loop's log), which do not import each other.
CORE_FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("processes", "plots", "extras", "gates", "store_uri"),
    ("storage",),
    ("fanin",),
    ("data",),
    ("model",),
    ("live",),
    ("serving", "monitoring"),
)
FLOOR = {part: n for n, parts in enumerate(CORE_FLOORS) for part in parts}
# Imports that point up a floor, each with the move that would remove it. An entry that
# is no longer needed fails below: delete it, so the list only ever shrinks.
UPWARD_TODO: set[tuple[str, str]] = set()
CORE = ROOT / "kfp_mlops"


def core_part(module: str) -> str | None:
    """``kfp_mlops.model.registry`` -> ``model``; None outside the core or for its face."""
    parts = module.split(".")
    return parts[1] if parts[0] == "kfp_mlops" and len(parts) > 1 else None


def part_of(path: Path) -> str:
    return path.relative_to(CORE).parts[0].removesuffix(".py")


CORE_FILES = [p for p in python_files("kfp_mlops") if p != CORE / "__init__.py"]


def test_every_part_of_the_core_has_a_floor():
    missing = sorted({part_of(p) for p in CORE_FILES} - set(FLOOR))
    assert not missing, f"give {missing} a floor in CORE_FLOORS (tests/test_layers.py)"


def upward_imports(path: Path) -> set[str]:
    """The kfp_mlops modules ``path`` imports on its own floor or above (its part aside)."""
    own = part_of(path)
    return {
        m for m in imported_modules(path)
        if (part := core_part(m)) not in (None, own) and part in FLOOR
        and FLOOR[part] >= FLOOR[own]
    }


@pytest.mark.parametrize("path", CORE_FILES, ids=[str(p.relative_to(ROOT)) for p in CORE_FILES])
def test_core_modules_import_only_the_floors_below(path):
    rel = path.relative_to(ROOT).as_posix()
    bad = {m for m in upward_imports(path) if (rel, m) not in UPWARD_TODO}
    own = part_of(path)
    assert not bad, (
        f"{rel} (floor {FLOOR.get(own)}: {own}) imports {sorted(bad)}, on its own floor or "
        f"above; the core's floors are {CORE_FLOORS}"
    )


def test_the_known_upward_imports_are_still_there():
    """A removed upward import leaves its entry behind: delete it from UPWARD_TODO."""
    stale = sorted(
        (rel, m) for rel, m in UPWARD_TODO
        if not (ROOT / rel).is_file() or m not in upward_imports(ROOT / rel)
    )
    assert not stale, f"no longer imported upward, delete from UPWARD_TODO: {stale}"
