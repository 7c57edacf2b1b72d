"""Compiled pipelines match the reviewed golden IR in tests/golden (SDK version stripped).

A wiring change shows up as a YAML diff in review. After an intended change, regenerate:

    KFP_MLOPS_REGEN_GOLDEN=1 .venv/bin/pytest tests/pipelines/test_golden.py
"""

import os
import re
from pathlib import Path

import pytest

from kfp_mlops.pipelines import PIPELINES
from kfp_mlops.pipelines.compile import compile_pipelines

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SDK_VERSION = re.compile(r"^sdkVersion: .*$", re.MULTILINE)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    compile_pipelines(out)
    return out


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_compiled_ir_matches_golden(compiled, name):
    text = SDK_VERSION.sub("sdkVersion: (stripped)", (compiled / f"{name}.yaml").read_text())
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("KFP_MLOPS_REGEN_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; regenerate (see module docstring)"
    assert text == golden.read_text(), (
        f"{name} compiles differently from {golden}; if intended, regenerate with "
        "KFP_MLOPS_REGEN_GOLDEN=1 .venv/bin/pytest tests/pipelines/test_golden.py"
    )
