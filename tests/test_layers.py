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
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


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
