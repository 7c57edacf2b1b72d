"""The training pipeline run end to end by the real kfp.local runner, through the CLI."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.app.commands.common import EXIT_GATE_STOPPED
from kfp_mlops.data.sources import load_table

pytestmark = pytest.mark.slow


def run_json(capsys, *argv):
    code = main(["run", *argv, "--output", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def assert_kserve_folder(uri):
    files = sorted(p.name for p in Path(uri).iterdir())
    assert [f for f in files if f.endswith((".joblib", ".pkl", ".pickle"))] == ["model.joblib"]
    assert "metadata.json" in files


def test_default_run_publishes_bundled_model_and_a_rerun_publishes_nothing(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KFP_MLOPS_STORE", raising=False)
    assert main(["run"]) == 0
    captured = capsys.readouterr()
    assert "Published: penguins version 1" in captured.out
    # A progress line when each task starts ([n/planned]) and when it ends.
    assert "[ 1/13] ingest ..." in captured.err and "[13/13] " in captured.err
    assert "[   ok] train" in captured.err
    assert "[14/13]" not in captured.err  # the plan counts every task of a passing run
    folder = tmp_path / "mlops-store" / "models" / "penguins" / "1"
    assert_kserve_folder(folder)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["metrics"]["accuracy"] > 0.9
    assert meta["data_sha256"] and meta["model_sha256"] and meta["sklearn_version"]
    assert {f["name"] for f in meta["features"]} >= {"island", "bill_length_mm"}
    assert meta["training_fingerprint"]

    # The same data, settings and code again: nothing new, exit 0, the version named.
    code, summary = run_json(capsys)
    assert code == 0 and summary["identical_to"] == 1 and summary["stopped_by"] is None
    assert summary["model_uri"] is None
    assert "identical to penguins version 1" in summary["gates"]["bless-model"]["reason"]
    assert not (folder.parent / "2").exists()
    code, summary = run_json(capsys, "--force-new-version")
    assert code == 0 and summary["version"] == 2


def test_csv_multiclass_with_missing_values_and_free_text(tmp_path, capsys):
    frame = load_table("penguins")
    rng = np.random.default_rng(3)
    frame["notes"] = [f"observed near nest {i} at dawn" for i in rng.permutation(len(frame))]
    frame.loc[::7, "flipper_length_mm"] = np.nan
    frame.to_csv(tmp_path / "birds.csv", index=False)
    code, summary = run_json(
        capsys, "--data", str(tmp_path / "birds.csv"), "--target", "species",
        "--store", str(tmp_path / "store"), "--runs-dir", str(tmp_path / "runs"),
    )
    assert code == 0
    assert summary["task"] == "classification"
    assert "notes" in summary["dropped_columns"]
    assert summary["gates"]["bless-model"]["passed"] is True
    assert summary["model_name"] == "birds" and summary["version"] == 1
    assert_kserve_folder(summary["model_uri"])
    assert Path(summary["run_dir"]).is_dir()


def test_regression_with_date_column_and_failed_gate(tmp_path, capsys):
    frame = load_table("diabetes")
    frame["visit"] = pd.date_range("2020-01-01", periods=len(frame), freq="D").strftime("%Y-%m-%d")
    frame.to_csv(tmp_path / "visits.csv", index=False)
    common = ["--data", str(tmp_path / "visits.csv"), "--target", "target",
              "--store", str(tmp_path / "store"), "--runs-dir", str(tmp_path / "runs")]
    code, summary = run_json(capsys, *common, "--quality-threshold", "0.99")
    assert code == EXIT_GATE_STOPPED and summary["stopped_by"] == "bless-model"
    assert summary["task"] == "regression" and "visit" not in summary["dropped_columns"]
    assert summary["date_features"] == {"visit": ["year", "month", "day_of_week"]}
    assert "model-card-refused/card" in summary["reports"]  # refused, yet explained
    assert summary["model_uri"] is None
    assert summary["gates"]["bless-model"]["passed"] is False
    assert "r2" in summary["gates"]["bless-model"]["reason"]
    assert summary["skipped"] == [f"publish skipped: {summary['gates']['bless-model']['reason']}"]
    assert not (tmp_path / "store" / "models").exists()


def test_run_against_s3_store(s3, tmp_path, capsys):
    code, summary = run_json(
        capsys, "--data", "breast_cancer", "--store", s3.uri("team"),
        "--runs-dir", str(tmp_path / "runs"),
    )
    assert code == 0
    assert summary["model_uri"] == f"s3://{s3.bucket}/team/models/breast-cancer/1"
    assert "roc_auc" in summary["metrics"]
    from kfp_mlops.storage import open_store

    keys = open_store(s3.uri("team")).list("models/breast-cancer/1")
    assert {"models/breast-cancer/1/metadata.json", "models/breast-cancer/1/model.joblib"} <= set(keys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "/no/such/file.csv", "--target", "y"], "does not exist"),
        (["--data", "iris", "--target", "species"], "target column 'species' is not in the data"),
    ],
)
def test_bad_input_fails_with_one_paragraph_and_publishes_nothing(tmp_path, capsys, argv, message):
    code = main(["run", *argv, "--store", str(tmp_path / "store"), "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    # The message says what the failed run did publish: at most the ingested data.
    assert "Nothing was published" in err or (
        "Published in the store since the run started: dataset version " in err
    )
    assert not (tmp_path / "store" / "models").exists()


def test_single_class_target_fails(tmp_path, capsys):
    frame = load_table("iris").assign(target="setosa")
    frame.to_csv(tmp_path / "one.csv", index=False)
    code = main(["run", "--data", str(tmp_path / "one.csv"), "--target", "target",
                 "--store", str(tmp_path / "store"), "--runs-dir", str(tmp_path / "r")])
    assert code == 1
    assert "single class" in capsys.readouterr().err


def test_unreachable_store_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    code = main(["run", "--store", "s3://nowhere/x", "--runs-dir", str(tmp_path / "r"), "--output", "json"])
    captured = capsys.readouterr()
    assert code == 1
    assert "cannot reach the S3 store" in json.loads(captured.out)["error"]
    assert not (tmp_path / "r").exists()
