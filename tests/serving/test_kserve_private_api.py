"""The KServe names the server relies on beyond KServe's public API, and the pin.

``kfp_mlops/serving/server.py`` overrides ``kserve.ModelServer.start`` (to bind one host
and use a REST server with quieter error handlers), which reaches into ModelServer
attributes and ``RESTServer``'s constructor; ``kfp_mlops/serving/decoding.py`` reads
``InferInput.data`` / ``as_numpy``. When a KServe release renames any of them these
tests fail naming the name and the installed kserve version (and so does the server's
start, instead of an AttributeError mid-way).
"""

from __future__ import annotations

import ast
from importlib.metadata import version
from pathlib import Path

import kserve
import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

from kfp_mlops.serving import server
from kfp_mlops.serving.process import free_port

ROOT = Path(__file__).parents[2]
KSERVE = version("kserve")


def test_installed_kserve_has_every_name_the_server_relies_on():
    instance = kserve.ModelServer(http_port=free_port(), enable_grpc=False)
    problems = server.kserve_api_problems(instance)
    assert not problems, (
        f"kserve {KSERVE} lacks names kfp_mlops/serving/server.py relies on: {problems}. "
        "Adapt _HostBoundModelServer.start / kserve_api_problems to this release, or pin "
        "kserve back in pyproject.toml."
    )


def test_the_list_covers_everything_the_start_override_uses():
    """Every ``self.X`` in the ModelServer.start override is in the checked lists."""
    tree = ast.parse((ROOT / "kfp_mlops/serving/server.py").read_text())
    override = next(
        node for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == "_HostBoundModelServer"
    )
    used = {
        node.attr for node in ast.walk(override)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name) and node.value.id == "self"
    }
    listed = set(server.MODEL_SERVER_METHODS) | set(server.MODEL_SERVER_ATTRIBUTES)
    assert used - listed == set(), f"add to server.MODEL_SERVER_*: {sorted(used - listed)}"


def test_no_private_kserve_attribute_is_read_elsewhere():
    """The predictor reads binary V2 data through public InferInput API (not _raw_data)."""
    for path in ("kfp_mlops/serving/decoding.py", "kfp_mlops/serving/predictor.py",
                 "kfp_mlops/serving/batch.py"):
        text = (ROOT / path).read_text()
        assert "_raw_data" not in text, path


def test_a_renamed_name_fails_clearly(monkeypatch):
    monkeypatch.delattr(kserve.ModelServer, "_register_and_check_atleast_one_model_is_ready")
    problems = server.kserve_api_problems()
    assert problems == ["kserve.ModelServer._register_and_check_atleast_one_model_is_ready()"]
    with pytest.raises(RuntimeError) as raised:
        server._refuse_unknown_kserve(problems)
    assert f"kserve {KSERVE}" in str(raised.value)
    assert "_register_and_check_atleast_one_model_is_ready" in str(raised.value)


def test_kserve_is_pinned_to_the_tested_minor_release():
    """Only the installed minor release is tested, so only it is allowed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [
        Requirement(r) for extra in project.get("optional-dependencies", {}).values()
        for r in extra if r.startswith("kserve")
    ] + [Requirement(r) for r in project["dependencies"] if r.startswith("kserve")]
    assert declared, "kserve is declared nowhere in pyproject.toml"
    installed = Version(KSERVE)
    for requirement in declared:
        assert installed in requirement.specifier, (
            f"kserve {KSERVE} is installed but pyproject.toml allows {requirement}"
        )
        allowed_minors = {
            (installed.major, minor) for minor in range(installed.minor - 3, installed.minor + 4)
            if Version(f"{installed.major}.{minor}.0") in requirement.specifier
            or Version(f"{installed.major}.{minor}.99") in requirement.specifier
        }
        assert allowed_minors == {(installed.major, installed.minor)}, (
            f"pyproject.toml allows {requirement}, but only kserve "
            f"{installed.major}.{installed.minor} is tested"
        )


def test_the_image_installs_from_the_constraints_file():
    constraints = (ROOT / "docker/constraints.txt").read_text().splitlines()
    pins = {line.split("==")[0].lower(): line.split("==")[1]
            for line in constraints if "==" in line and not line.startswith("#")}
    assert pins.get("kserve") == KSERVE
    import sklearn

    assert pins.get("scikit-learn") == sklearn.__version__
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c docker/constraints.txt" in dockerfile or "--constraint docker/constraints.txt" in dockerfile


def test_the_serving_container_has_a_read_only_root_filesystem():
    import yaml

    runtime = yaml.safe_load(
        (ROOT / "manifests/base/runtime/cluster-serving-runtime.yaml").read_text()
    )
    (container,) = [c for c in runtime["spec"]["containers"] if c["name"] == "kserve-container"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
