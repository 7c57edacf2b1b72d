"""The three layers import one way only: pipelines -> components -> core; core has no kfp.

import-linter cannot follow setuptools' package-dir mapping (components/ and pipelines/
live outside kfp_mlops/), so the contract is checked here from the source with ast.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ["kfp_mlops/data", "kfp_mlops/model", "kfp_mlops/serving", "kfp_mlops/storage.py",
        "kfp_mlops/monitor.py", "kfp_mlops/errors.py", "kfp_mlops/plots.py"]


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


@pytest.mark.parametrize("path", python_files(*CORE), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_neither_kfp_nor_upper_layers(path):
    bad = {
        m for m in imported_modules(path)
        if m == "kfp" or m.startswith(("kfp.", "kfp_mlops.components", "kfp_mlops.pipelines"))
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", python_files("components"), ids=lambda p: str(p.relative_to(ROOT)))
def test_components_do_not_import_pipelines(path):
    bad = {m for m in imported_modules(path) if m.startswith("kfp_mlops.pipelines")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_storage_knows_the_store_backends():
    """Callers use the Store interface; what differs between backends the store answers
    (exclusive_publish, read_concurrency, list_folded), so nobody asks which one it is."""
    backends = {"LocalStore", "S3Store"}
    offenders = []
    for path in python_files("kfp_mlops", "components", "pipelines"):
        if path == ROOT / "kfp_mlops" / "storage.py":
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
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in sorted(names)]
    assert not offenders, offenders

