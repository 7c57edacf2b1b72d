"""`kfp-mlops monitor` before the labels arrive: estimated quality, no false failure.

A model is trained with ``kfp-mlops run`` (its calibration is fitted on the held-out
rows and stored with the version). Then batches without the target column are
monitored, as a CSV file and as a Parquet folder (sharded): that is the normal case, so
the run exits 0, validation passes with "labels pending", and the console and the JSON
say what happened: the version kept, no drift, and the estimated accuracy with its band.
The same batch with its labels joined shows the realized accuracy beside the estimate.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.data.generator import make_batch
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import open_store

pytestmark = pytest.mark.slow


def cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unlabelled_batches_are_estimated_not_failed(tmp_path, capsys):
    store, runs = str(tmp_path / "store"), str(tmp_path / "runs")
    common = ["--model-name", "loans", "--store", store, "--runs-dir", runs]
    make_batch("reference", 1500, 1).to_csv(tmp_path / "train.csv", index=False)
    code, out, err = cli(capsys, "run", "--data", str(tmp_path / "train.csv"), "--target",
                         "default", *common, "--output", "json")
    assert code == 0, err
    production = Registry(open_store(store)).get("loans@1").metadata
    assert production.performance_estimator["method"] == "cbpe"

    batch = make_batch("reference", 1000, 2)
    batch.drop(columns="default").to_csv(tmp_path / "unlabelled.csv", index=False)
    code, out, err = cli(capsys, "monitor", "--data", str(tmp_path / "unlabelled.csv"),
                         *common)
    assert code == 0, out + err
    assert "kept production version 1: no drift, estimated accuracy" in out, out
    assert "stopped by" not in out and "Validation FAIL" not in out
    assert "Quality:   estimated accuracy" in out and "labels pending" in out

    code, out, _ = cli(capsys, "monitor", "--data", str(tmp_path / "unlabelled.csv"),
                       *common, "--output", "json")
    found = json.loads(out)
    assert code == 0 and found["stopped_by"] is None and not found["monitor"]["retrain"]
    assert "data quality" not in found["monitor"]["reason"]
    estimated = float(found["monitor"]["quality"].split("estimated accuracy ")[1].split()[0])
    labelled = batch.copy()
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    code, out, _ = cli(capsys, "monitor", "--data", str(tmp_path / "labelled.csv"), *common,
                       "--output", "json")
    both = json.loads(out)["monitor"]
    assert "realized accuracy" in both["quality"] and "estimated accuracy" in both["quality"]
    realized = float(both["quality"].split("realized accuracy ")[1].split()[0])
    assert abs(estimated - realized) < 0.06, both["quality"]
    assert "realized accuracy" in both["headline"]
    report = next(path for name, path in json.loads(out)["reports"].items()
                  if name == "monitor/report")
    html = open(report).read()
    order = [html.index(h) for h in ("<h2>Decision</h2>", "<h2>Model quality</h2>",
                                     "<h2>Drifted columns</h2>", "<h2>Drift:")]
    assert order == sorted(order)

    # A Parquet folder without the target: the sharded pipeline, the same verdict.
    for i, day in enumerate(["2026-11-01", "2026-11-02"]):
        folder = tmp_path / "folder" / f"day={day}"
        folder.mkdir(parents=True)
        part = batch.drop(columns="default").iloc[i * 500:(i + 1) * 500]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       folder / "part-0.parquet")
    code, out, err = cli(capsys, "monitor", "--data", str(tmp_path / "folder"), *common,
                         "--output", "json")
    sharded = json.loads(out)
    assert code == 0, err
    assert sharded["stopped_by"] is None and not sharded["monitor"]["retrain"]
    assert sharded["monitor"]["headline"].startswith("kept production version 1: no drift, "
                                                     "estimated accuracy")
