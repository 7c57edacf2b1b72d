"""The Dockerfile, its build context and its pins (the image itself: docker/image-test.sh)."""

import importlib.util
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _freeze_module():
    spec = importlib.util.spec_from_file_location("freeze", ROOT / "docker/freeze_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_base_is_the_python_the_constraints_were_frozen_with():
    frozen = re.search(r"on Python (\d+\.\d+)\.\d+",
                       (ROOT / "docker/constraints.txt").read_text()).group(1)
    [base] = re.findall(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert re.fullmatch(rf"python:{re.escape(frozen)}(\.\d+)?-slim", base), base
    assert DOCKERFILE.index("ARG BASE_IMAGE=") < DOCKERFILE.index("FROM ${BASE_IMAGE}")


def test_oci_labels_come_from_build_arguments():
    for label, arg in [("version", "VERSION"), ("revision", "REVISION"), ("source", "SOURCE"),
                       ("base.name", "BASE_IMAGE")]:
        assert f'org.opencontainers.image.{label}="${{{arg}}}"' in DOCKERFILE
        assert re.search(rf"^ARG {arg}\b", DOCKERFILE[DOCKERFILE.index("FROM"):], re.M), arg


def test_the_ca_bundle_is_a_build_secret_not_a_layer():
    assert "--mount=type=secret,id=ca-bundle" in DOCKERFILE
    assert not re.search(r"^(COPY|ADD)\b.*\.(crt|pem)\b", DOCKERFILE, re.M)


def test_the_build_checks_the_installed_closure_against_the_pins():
    assert "python docker/freeze_constraints.py --check" in DOCKERFILE
    freeze = _freeze_module()
    assert freeze.differences({"a": "1", "b": "2"}, {"a": "1", "b": "2"}) == []
    assert freeze.differences({"a": "1", "new": "3"}, {"a": "2", "gone": "1"}) == [
        "a 1 is installed, 2 is pinned",
        "gone==1 is pinned but not in the installed closure",
        "new 3 is installed but not pinned",
    ]


def test_extras_pick_which_estimator_pins_the_image_installs():
    """EXTRAS=serving leaves out XGBoost and LightGBM; naming them brings their pins."""
    assert re.search(r"^ARG EXTRAS=serving$", DOCKERFILE, re.M)
    freeze = _freeze_module()
    serving = freeze.pins_for("serving")
    assert "scikit-learn" in serving and "kserve" in serving
    assert "xgboost-cpu" not in serving and "lightgbm" not in serving
    both = freeze.pins_for("serving,xgboost, lightgbm")
    assert set(both) - set(serving) == {"xgboost-cpu", "lightgbm"}
    # --pins runs before pip has installed anything: the module needs no `packaging`.
    done = subprocess.run(["python3", "-I", str(ROOT / "docker/freeze_constraints.py"),
                           "--pins", "serving,xgboost"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "xgboost-cpu==" in done.stdout and "lightgbm==" not in done.stdout
    bad = subprocess.run(["python3", "-I", str(ROOT / "docker/freeze_constraints.py"),
                          "--pins", "serving,xgbost"], capture_output=True, text=True)
    assert bad.returncode != 0 and "xgbost" in bad.stderr and "xgboost" in bad.stderr


def test_the_build_context_leaves_out_environments_stores_runs_and_history():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "mlops-store", ".kfp-mlops", "**/__pycache__"):
        assert entry in ignored, entry
    needed = re.findall(r"^COPY (\S+)", DOCKERFILE, re.M) + ["docker/constraints.txt"]
    for path in needed:
        if not path.startswith("--"):
            assert path.split("/")[0] not in ignored, path


def test_the_image_test_script_is_valid_bash():
    script = ROOT / "docker/image-test.sh"
    assert script.stat().st_mode & 0o111, "docker/image-test.sh is not executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "docker/image-test.sh" in (ROOT / ".ci/run").read_text()
