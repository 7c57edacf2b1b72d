"""Fixtures for the automation tests: the KFP API double on 127.0.0.1."""

import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.automation.kfp_api_double import KfpApiDouble, serve  # noqa: E402


@pytest.fixture
def kfp_api():
    """A fresh KFP API double; stopped when the test ends."""
    with serve(KfpApiDouble()) as double:
        yield double


@pytest.fixture(autouse=True)
def _no_kfp_context(tmp_path, monkeypatch):
    """Keep kfp.Client away from the developer's ~/.config/kfp/context.json."""
    monkeypatch.setenv("HOME", str(tmp_path))
    import kfp.client.client as kfp_client

    monkeypatch.setattr(
        kfp_client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / ".config/kfp/context.json")
    )
