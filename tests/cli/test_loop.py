"""The drift -> retrain -> promote loop, run locally from the CLI as the README shows.

Batch 1 trains and promotes the first model; batch 2 (same world) does not drift, so
retraining is skipped; batch 3 (drifted) retrains and promotes version 2. A deliberately
weak challenger is then refused by the champion comparison, and rollback works.
"""

import json

import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.app.commands.common import EXIT_GATE_STOPPED
from kfp_mlops.data.generator import make_batch

pytestmark = pytest.mark.slow


def cli_json(capsys, *argv):
    code = main([*argv, "--output", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def test_three_run_loop_then_weak_challenger_then_rollback(tmp_path, capsys):
    store, runs = str(tmp_path / "store"), str(tmp_path / "runs")
    batches = {}
    for name, kind, seed in [("b1", "reference", 1), ("b2", "reference", 2), ("b3", "drifted", 3)]:
        batches[name] = tmp_path / f"{name}.csv"
        make_batch(kind, 1200, seed).to_csv(batches[name], index=False)
    common = ["--model-name", "loans", "--target", "default", "--store", store, "--runs-dir", runs]

    code, first, _ = cli_json(capsys, "continuous", "--data", str(batches["b1"]), *common)
    assert code == 0, first
    assert first["monitor"]["retrain"] is True and "no production version" in first["monitor"]["reason"]
    assert first["version"] == 1 and first["deploy"] == "registry-only"
    assert all(g["passed"] for g in first["gates"].values())

    code, second, _ = cli_json(capsys, "continuous", "--data", str(batches["b2"]), *common)
    assert code == 0
    assert second["monitor"]["retrain"] is False and second["model_uri"] is None
    assert second["skipped"][0].startswith("retraining skipped: no dataset drift")

    code, third, _ = cli_json(capsys, "continuous", "--data", str(batches["b3"]), *common)
    assert code == 0
    assert third["monitor"]["drift"] is True
    assert third["version"] == 2 and "champion is loans@1" in third["gates"]["bless-model"]["reason"]

    code, versions, _ = cli_json(capsys, "models", "list", "loans", "--store", store)
    assert [(v["version"], v["stage"]) for v in versions] == [(1, "archived"), (2, "production")]

    # A weak challenger on the same data is refused by the champion comparison.
    code, weak, _ = cli_json(
        capsys, "run", "--data", str(batches["b3"]), *common,
        "--estimator", "logistic_regression", "--params", '{"C": 1e-06}',
    )
    assert code == EXIT_GATE_STOPPED and weak["stopped_by"] == "bless-model"
    assert weak["gates"]["bless-model"]["passed"] is False and weak["model_uri"] is None
    assert "champion" in weak["gates"]["bless-model"]["reason"]

    code, rolled, _ = cli_json(capsys, "models", "rollback", "loans", "--reason", "test",
                               "--store", store)
    assert code == 0 and rolled["version"] == 1

    # Monitoring with labels on only some rows reports performance on those rows.
    partial = make_batch("drifted", 600, 9)
    partial.loc[::2, "default"] = None
    partial.to_csv(tmp_path / "partial.csv", index=False)
    code, watched, _ = cli_json(capsys, "monitor", "--data", str(tmp_path / "partial.csv"),
                                "--model-name", "loans", "--store", store, "--runs-dir", runs)
    assert code == 0 and watched["monitor"]["drift"] is True
    metrics = json.loads((tmp_path / "runs").joinpath(
        watched["run_dir"], "monitor", "executor_output.json").read_text())
    logged = metrics["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert logged["labelled_rows"] == 300 and 0 < logged["current_accuracy"] <= 1
    assert any(path.endswith(".html") for path in watched["reports"].values())

    # A batch with another schema is refused with the missing columns named.
    make_batch("reference", 100, 4).drop(columns=["income"]).to_csv(tmp_path / "bad.csv", index=False)
    code, error, err = cli_json(capsys, "monitor", "--data", str(tmp_path / "bad.csv"),
                                "--model-name", "loans", "--store", store, "--runs-dir", runs)
    assert code == 1 and "income" in error["error"]
