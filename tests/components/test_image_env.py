"""``KFP_MLOPS_IMAGE`` names the image wherever the components are compiled.

Each case runs in a fresh interpreter (the components read the variable when first
imported, as a user's process does): KFP's own ``kfp dsl compile --py``, a user's
pipeline that imports a component, and ``kfp-mlops compile`` (whose ``--image`` wins).
A cluster image whose name has no registry host warns.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kfp_mlops.components.image import BUILT_IN_IMAGE, pull_warning, registry_host

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PUSHED = "registry.example.com:5000/team/kfp-mlops:1.2"


def _run(args, image: str | None, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KFP_MLOPS_IMAGE"}
    if image is not None:
        env["KFP_MLOPS_IMAGE"] = image
    return subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True,
                          check=True)


def _images(path: Path) -> set[str]:
    ir = next(yaml.safe_load_all(path.read_text()))
    return {e["container"]["image"] for e in ir["deploymentSpec"]["executors"].values()}


@pytest.mark.parametrize("image, host", [
    ("kfp-mlops:0.1.0", None), ("team/kfp-mlops:0.1.0", None),
    ("ghcr.io/team/kfp-mlops:0.1.0", "ghcr.io"), ("localhost/kfp-mlops", "localhost"),
    ("registry:5000/kfp-mlops", "registry:5000"), (PUSHED, "registry.example.com:5000"),
])
def test_the_registry_host_is_read_as_container_runtimes_read_it(image, host):
    assert registry_host(image) == host
    assert (pull_warning(image) is None) == (host is not None)


@pytest.mark.slow
def test_kfp_dsl_compile_takes_the_image_from_the_environment(tmp_path):
    out = tmp_path / "training.yaml"
    done = _run([str(BIN / "kfp"), "dsl", "compile", "--py",
                 str(REPO / "pipelines" / "training.py"), "--output", str(out)], PUSHED, tmp_path)
    assert _images(out) == {PUSHED}
    assert "no registry host" not in done.stderr
    done = _run([str(BIN / "kfp"), "dsl", "compile", "--py",
                 str(REPO / "pipelines" / "training.py"), "--output", str(out)], None, tmp_path)
    assert _images(out) == {BUILT_IN_IMAGE}
    assert "ImagePullWarning" in done.stderr and "names no registry host" in done.stderr


def test_a_users_own_pipeline_gets_the_image_from_the_environment(tmp_path):
    script = (
        "from kfp import compiler, dsl\n"
        "from kfp_mlops.components.model import fixed_params\n"
        "@dsl.pipeline(name='mine')\n"
        "def mine():\n"
        "    fixed_params(params='{}')\n"
        "compiler.Compiler().compile(mine, 'mine.yaml')\n"
    )
    _run([sys.executable, "-c", script], PUSHED, tmp_path)
    assert _images(tmp_path / "mine.yaml") == {PUSHED}


def test_kfp_mlops_compile_takes_the_environment_and_image_wins(tmp_path):
    cli = str(BIN / "kfp-mlops")
    _run([cli, "compile", "--pipeline", "batch-inference", "--output-dir", "a"], PUSHED, tmp_path)
    assert _images(tmp_path / "a" / "batch-inference.yaml") == {PUSHED}
    done = _run([cli, "compile", "--pipeline", "batch-inference", "--output-dir", "b",
                 "--image", "ghcr.io/x/kfp-mlops:2"], PUSHED, tmp_path)
    assert _images(tmp_path / "b" / "batch-inference.yaml") == {"ghcr.io/x/kfp-mlops:2"}
    assert "warning" not in done.stderr
    done = _run([cli, "compile", "--pipeline", "batch-inference", "--output-dir", "c"], None,
                tmp_path)
    assert _images(tmp_path / "c" / "batch-inference.yaml") == {BUILT_IN_IMAGE}
    assert done.stderr.count("warning: the image 'kfp-mlops:0.1.0' names no registry host") == 1
