"""The reports a run makes, built once for the layout tests (see screenshot.py)."""

import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.reports.screenshot import build_reports  # noqa: E402


@pytest.fixture(scope="session")
def reports(tmp_path_factory) -> dict[str, Path]:
    return build_reports(tmp_path_factory.mktemp("reports"))
