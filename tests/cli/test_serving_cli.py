"""`kfp-mlops serve` and `kfp-mlops score` on a registry version, as a user runs them."""

import json
import os
import shlex
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.data.sources import load_table
from kfp_mlops.model.package import write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.serving.process import free_port
from kfp_mlops.storage import open_store

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path):
    model, metadata = train_model(load_table("penguins"), TrainingSettings(
        target="species", task="classification"))
    write_model_folder(model, metadata, tmp_path / "m")
    registry = Registry(open_store(str(tmp_path / "store")))
    registry.publish("penguins", tmp_path / "m", metadata, stage="production", blessed=True)
    return str(tmp_path / "store")


def test_serve_answers_v1_and_refuses_bad_input(store, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "kfp_mlops.app.cli", "serve", "penguins@production", "--port", str(port),
         "--store", store],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read().decode()
            time.sleep(0.5)
        row = load_table("penguins").drop(columns=["species"]).iloc[0].to_dict()
        row = json.loads(pd.Series(row).to_json())
        ok = httpx.post(f"{base}/v1/models/penguins:predict", json={"instances": [row]})
        assert ok.status_code == 200 and ok.json()["predictions"] == ["Adelie"]
        bad = httpx.post(f"{base}/v1/models/penguins:predict",
                         json={"instances": [{**row, "bill_length_mm": "long"}]})
        assert bad.status_code == 400 and "bill_length_mm" in bad.text
        # The printed curl command is a request the server answers (sent as curl would).
        printed = [server.stderr.readline().decode() for _ in range(6)]
        [curl] = [line.strip() for line in printed if line.strip().startswith("curl ")]
        _, _, _, header, url, _, body = shlex.split(curl)
        pasted = httpx.post(url, content=body, headers=[tuple(header.split(": "))])
        assert pasted.json()["predictions"][0] in {"Adelie", "Chinstrap", "Gentoo"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_score_writes_predictions_for_every_row(store, tmp_path, capsys):
    rows = load_table("penguins").drop(columns=["species"])
    rows.insert(0, "id", range(len(rows)))
    rows.to_csv(tmp_path / "new.csv", index=False)
    code = main(["score", "penguins@production", "--data", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "preds.parquet"), "--probabilities",
                 "--keep-columns", "id", "--store", store, "--runs-dir", str(tmp_path / "runs"),
                 "--output", "json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    predictions = pd.read_parquet(tmp_path / "preds.parquet")
    assert result["rows"] == len(rows) == len(predictions)
    assert list(predictions["id"]) == list(rows["id"])
    assert {"prediction", "proba_Adelie"} <= set(predictions.columns)
