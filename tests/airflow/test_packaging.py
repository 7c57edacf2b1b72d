"""Packaging for Airflow: kserve is the 'serving' extra, and only serving imports it.

Apache Airflow 3 and kserve cannot share an environment, so ``kfp-mlops[airflow]`` must
install and import without kserve. The import check runs in a child interpreter of this
venv where ``import kserve`` is made to fail as it does when kserve is not installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
KSERVE_MODULES = {"kfp_mlops.serving.predictor", "kfp_mlops.serving.decoding",
                  "kfp_mlops.serving.server",
                  "kfp_mlops.serving.__main__"}


def _list(name: str) -> str:
    match = re.search(rf"^{name} = \[(.*?)^\]", PYPROJECT, re.S | re.M)
    assert match, f"pyproject.toml has no {name} list"
    return match.group(1)


def test_kserve_is_the_serving_extra_and_the_image_and_tests_install_it():
    assert "kserve" not in _list("dependencies")
    assert "kserve" in _list("serving")
    assert '"kfp-mlops[serving]"' in _list("test")  # README's pip install -e '.[test]'
    airflow = _list("airflow")
    assert "apache-airflow>=3" in airflow and "kserve" not in airflow
    assert '"kfp_mlops.app.airflow"' in PYPROJECT
    installs = [line for line in (ROOT / "Dockerfile").read_text().splitlines()
                if "pip install" in line]
    # The pinned closure (kserve among it), then the suite with its extras, `serving` by
    # default (the EXTRAS build argument).
    assert re.search(r"^ARG EXTRAS=serving$", (ROOT / "Dockerfile").read_text(), re.M)
    assert any('.[${EXTRAS}]' in line for line in installs), installs
    assert all("docker/constraints.txt" in line or "/tmp/pins.txt" in line
               for line in installs), installs
    assert "docker/freeze_constraints.py --pins" in (ROOT / "Dockerfile").read_text()


BLOCK_KSERVE = textwrap.dedent("""
    import importlib, importlib.abc, pkgutil, sys

    class NoKserve(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "kserve" or name.startswith("kserve."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NoKserve())
    import kfp_mlops, kfp_mlops.app
    skipped = set(sys.argv[1].split(","))
    infos = [*pkgutil.walk_packages(kfp_mlops.__path__, "kfp_mlops."),
             *pkgutil.walk_packages(kfp_mlops.app.__path__, "kfp_mlops.app.")]
    for info in infos:
        if info.name in skipped or info.name.startswith("kfp_mlops.app.airflow."):
            continue
        importlib.import_module(info.name)
    assert not any(m == "kserve" or m.startswith("kserve.") for m in sys.modules)
    for name in sorted(skipped):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"{name}: {exc}")
    from kfp_mlops.app.cli import main
    print("serve exit", main(["serve", "penguins@production", "--store", sys.argv[2]]))
""")


def test_nothing_but_serving_imports_kserve_and_serving_names_the_extra(tmp_path):
    # kfp_mlops.app.airflow.dag and .operator import Airflow, which is not in this venv.
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_KSERVE, ",".join(sorted(KSERVE_MODULES)),
         str(tmp_path / "store")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    fix = "pip install 'kfp-mlops[serving]'"
    for name in ("kfp_mlops.serving.predictor", "kfp_mlops.serving.decoding",
                 "kfp_mlops.serving.server"):
        [line] = [x for x in lines if x.startswith(name + ":")]
        assert fix in line and "KServe" in line
    assert "serve exit 1" in lines
    assert fix in done.stderr and "`kfp-mlops serve` needs KServe" in done.stderr


def test_step_and_run_modules_import_neither_airflow_nor_kfp():
    """They run (and are tested) without Airflow; only dag.py and operator.py import it."""
    import ast

    for name in ("steps.py", "kfp_runs.py"):
        tree = ast.parse((ROOT / "app" / "airflow" / name).read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree)
                    if isinstance(n, ast.ImportFrom) and n.module}
        bad = {m for m in modules if m.split(".")[0] in ("airflow", "kfp")}
        assert not bad, f"app/airflow/{name} imports {sorted(bad)}"
