"""The README's two commands are what CI runs: keep them in step."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_command = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.startswith("python3 -m venv")
    ]
    assert len(ci_command) == 1
    assert ci_command[0] in readme


def test_readme_quickstart_runs_the_local_pipeline():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e '.[serving]' && .venv/bin/kfp-mlops run" in readme
