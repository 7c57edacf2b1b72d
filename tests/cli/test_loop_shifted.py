"""The drift -> retrain loop on data the suite has not seen, through a large shift.

Three batches of the cars data (tests/data/cars.py), run with ``kfp-mlops continuous``
as a user would: batch 1 trains the first model; batch 2 (same world) does not drift;
batch 3 has weights x1.7, horsepower x1.9 and mpg x0.5, far past the inferred ranges,
and new names in the free-text ``Name`` column. Before issue 13 the data gate blocked
batch 3 (three maxima past the inferred ranges, new names outside an inferred domain)
and production stayed on the old model. Now it trains, beats the champion on the same
held-out rows, is promoted, and schema version 2 records the widened ranges and the run.
"""

import json

import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.data.schema import load_schema
from kfp_mlops.storage import LocalStore
from tests.data.cars import SHIFT, TARGET, cars_batches

pytestmark = pytest.mark.slow


def cli_json(capsys, *argv):
    code = main([*argv, "--output", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def test_shifted_batch_retrains_and_the_challenger_is_promoted(tmp_path, capsys):
    store, runs = str(tmp_path / "store"), str(tmp_path / "runs")
    batches = cars_batches()
    for name, frame in batches.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    # 3 of 8 monitored columns move; the drift share that means "retrain" is set to 0.3.
    common = ["--model-name", "cars", "--target", TARGET, "--store", store,
              "--runs-dir", runs, "--drift-share", "0.3"]

    code, first, _ = cli_json(capsys, "continuous", "--data", str(tmp_path / "b1.csv"), *common)
    assert code == 0, first
    assert first["version"] == 1 and first["task"] == "regression"

    code, second, _ = cli_json(capsys, "continuous", "--data", str(tmp_path / "b2.csv"), *common)
    assert code == 0 and second["monitor"]["retrain"] is False, second

    code, third, _ = cli_json(capsys, "continuous", "--data", str(tmp_path / "b3.csv"), *common)
    assert code == 0, third
    assert third["monitor"]["retrain"] is True and third["monitor"]["drift"] is True
    assert set(SHIFT) <= set(third["monitor"]["reason"].replace(",", " ").replace(";", " ").split())
    gate = third["gates"]["validate-data"]
    assert gate["passed"] and "widened: schema 'cars' v1 -> v2" in gate["reason"], gate
    assert third["stopped_by"] is None and third["version"] == 2

    # The challenger beat the champion on the same held-out rows.
    blessing = json.loads((tmp_path / "runs" / third["run_dir"] / "bless-model" / "blessing")
                          .read_text())["blessing"]
    r2 = next(c for c in blessing["comparisons"] if c["metric"] == "r2")
    assert blessing["champion_version"] == 1 and r2["challenger"] > r2["champion"] + 0.1, r2

    code, versions, _ = cli_json(capsys, "models", "list", "cars", "--store", store)
    assert [(v["version"], v["stage"]) for v in versions] == [(1, "archived"), (2, "production")]

    schema = load_schema(LocalStore(tmp_path / "store"), "cars")
    assert schema.version == 2
    widened = schema.notes["widened"]
    assert widened["run"] == third["run_dir"].rstrip("/").split("/")[-1]
    assert set(widened["columns"]) == set(SHIFT)
    shifted = batches["b3"]
    for column in SHIFT:
        assert schema.columns[column].range_kind == "inferred"
        assert schema.columns[column].min <= shifted[column].min()
        assert schema.columns[column].max >= shifted[column].max()
