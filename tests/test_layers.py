"""The four layers import one way only: app -> pipelines -> components -> core.

Every module is checked by the folder it lives in, so a new module is covered the day
it is added. import-linter cannot follow setuptools' package-dir mapping (components/,
pipelines/ and app/ live outside kfp_mlops/), so the contract is checked here from the
source with ast.
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

