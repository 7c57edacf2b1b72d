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


def _labels(lines):
    import re

    labels = []
    for line in lines:
        match = re.match(r"^([A-Z][A-Za-z ]+):\s+\S", line)
        if match and (not labels or labels[-1] != match.group(1)):
            labels.append(match.group(1))
    return labels


def test_readme_sample_output_has_the_shape_a_run_prints():
    import re

    from kfp_mlops.app.console import format_summary

    readme = (ROOT / "README.md").read_text()
    start = readme.index("then a summary")
    block = readme[readme.index("```\n", start) + 4:]
    block = block[:block.index("```")].splitlines()
    progress = [line for line in block if line.startswith("  [")]
    assert progress and all(
        re.match(r"^  \[ *(\d+/\d+|ok|FAIL|\.\.\.)\] \S+", line) for line in progress), progress
    full = format_summary({
        "data": {"source": "s", "rows": 1, "dataset_version": "v", "new_version": True},
        "task": "classification", "target": "y", "estimator": "E", "dropped_columns": {"c": "r"},
        "tuning": "t", "metrics": {"accuracy": 1.0}, "monitor": {"retrain": True, "reason": "r"},
        "blessing_policy": "accuracy>=0.7~0.01", "gates": {"g": {"passed": True, "reason": "r"}},
        "skipped": ["s"], "model_uri": "u", "model_name": "m", "version": 1, "deploy": "d",
        "reports": {"r": "p"}, "run_dir": "d", "log": "l",
    }).splitlines()
    order = _labels(full)
    shown = _labels(block)
    assert {"Data", "Metrics", "Gate", "Published", "Run dir", "Full log"} <= set(shown)
    positions = [order.index(label) for label in shown]  # every label is one a run prints
    assert positions == sorted(positions), (shown, order)  # in the order a run prints them
