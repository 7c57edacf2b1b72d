"""Fixtures for the Airflow tests: the Airflow venv, an Airflow home, the KFP API double.

Apache Airflow 3 and kserve cannot be installed together, and the suite's .venv holds
kserve, so the tests that run Airflow use their own venv, ``.venv-airflow`` at the
repository root: created on first use with ``pip install -e '.[airflow]'`` (a few
minutes, PyPI needed), reused while its stamp matches the airflow extra and Python.
The package is installed editable, so code changes need no reinstall.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VENV = Path(os.environ.get("KFP_MLOPS_AIRFLOW_VENV", ROOT / ".venv-airflow"))
STAMP = "kfp-mlops-airflow.stamp"
INSTALL_TIMEOUT_S = 1500


def _wanted_stamp() -> str:
    """What the venv must have been built from: Python, base deps, the airflow extra and
    the package layout (an editable install maps each package folder when it is made)."""
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: any change to pyproject.toml rebuilds
        return hashlib.sha256((sys.version + text).encode()).hexdigest()
    config = tomllib.loads(text)
    project = config["project"]
    wanted = {
        "python": sys.version.split()[0],
        "dependencies": project["dependencies"],
        "airflow": project["optional-dependencies"]["airflow"],
        "layout": config["tool"]["setuptools"],
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


def _bin(name: str) -> Path:
    return VENV / "bin" / name


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """The Airflow venv, created (or rebuilt when stale) with pip on first use."""
    stamp = VENV / STAMP
    wanted = _wanted_stamp()
    if stamp.exists() and stamp.read_text() == wanted and _bin("airflow").exists():
        return VENV
    commands = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(_bin("pip")), "install", "--quiet", "--disable-pip-version-check", "-e",
         f"{ROOT}[airflow]"],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            log = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                            if not line.startswith("WARNING: Location"))
            pytest.fail(f"could not build the Airflow venv at {VENV} with {' '.join(command)} "
                        f"(exit {done.returncode}); pip said:\n{log[-4000:]}")
    stamp.write_text(wanted)
    return VENV


@pytest.fixture(scope="session")
def airflow_env(airflow_venv, tmp_path_factory) -> dict[str, str]:
    """Environment for Airflow commands: a fresh AIRFLOW_HOME on SQLite, examples/ as dags."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "examples" / "airflow"),
        "HOME": str(home),  # keeps kfp.Client away from the developer's ~/.config/kfp
        "PYTHONPATH": str(ROOT),
    }
    env.pop("KFP_MLOPS_STORE", None)
    done = subprocess.run([str(_bin("airflow")), "db", "migrate"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return env


@pytest.fixture(autouse=True)
def _no_kfp_context(tmp_path, monkeypatch):
    """Keep kfp.Client (used by submit) away from the developer's ~/.config/kfp."""
    monkeypatch.setenv("HOME", str(tmp_path))
    import kfp.client.client as kfp_client

    monkeypatch.setattr(
        kfp_client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / ".config/kfp/context.json")
    )
