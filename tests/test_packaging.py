"""Every package folder is in pyproject.toml's explicit package list, and nothing else.

The list is explicit because three folders map into ``kfp_mlops`` (package-dir). A folder
missing from it still imports in an editable checkout but is left out of the wheel, so the
image (a non-editable install) would fail at the first import of it.
"""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_list_is_the_package_folders():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join([name, *path.parent.relative_to(ROOT / folder).parts])
        for name, folder in setup["package-dir"].items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    listed = set(setup["packages"])
    assert found - listed == set(), f"add {sorted(found - listed)} to [tool.setuptools] packages"
    assert listed - found == set(), f"{sorted(listed - found)} are listed but have no modules"
