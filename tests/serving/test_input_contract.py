"""One input contract for V1 records, V2 columns and batch scoring (issue 13, point 3).

A model trained on a cars file (tests/data/cars.py) drops ``Name`` (identifier-like
text) and ``Year`` (a date) and predicts ``Miles_per_Gallon``. That same file, target
and dropped columns included, goes to the real KServe ModelServer (a subprocess on
127.0.0.1) over V1 and V2 and to ``kfp-mlops score`` (the batch pipeline on kfp.local):
the predictions are equal. A misspelt column is refused by name everywhere, with the
reason counted in ``kfp_mlops_invalid_inputs_total``, unless unknown columns are
ignored on request.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.model.package import load_model_folder, write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.serving.batch import BatchInputError, score_parquet
from kfp_mlops.serving.contract import IGNORE_UNKNOWN_ENV, InputContract
from kfp_mlops.serving.payloads import encode_v1, encode_v2
from kfp_mlops.serving.process import running_server
from kfp_mlops.storage import LocalStore
from tests.data.cars import TARGET, cars_batches
from tests.serving.serving_models import feature_schema

TYPO = "Weigth_in_lbs"


@pytest.fixture(scope="module")
def training_file(tmp_path_factory) -> Path:
    """A training file as a user has it: every column, the target with gaps."""
    path = tmp_path_factory.mktemp("cars") / "cars.csv"
    cars_batches()["b3"].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cars_dir(training_file, tmp_path_factory) -> Path:
    model, metadata = train_model(pd.read_csv(training_file), TrainingSettings(
        target=TARGET, task="regression"))
    folder = tmp_path_factory.mktemp("model") / "cars"
    write_model_folder(model, metadata, folder)
    return folder


def every_column(frame: pd.DataFrame):
    """Field descriptions for every column of ``frame`` (what the encoders send)."""
    return feature_schema(frame)


def test_the_model_drops_name_and_the_file_still_holds_every_column(cars_dir, training_file):
    _, metadata = load_model_folder(cars_dir)
    # Year is a date: calendar features now (kfp_mlops.model.calendar), not dropped.
    assert set(metadata.dropped_columns) == {"Name"}
    assert metadata.date_features == {"Year": ["year", "month", "day_of_week"]}
    assert {"Name", "Year", TARGET} <= set(pd.read_csv(training_file).columns)
    contract = InputContract.for_model(metadata, ignore_unknown=False)
    assert contract.ignored == {"Name", TARGET}
    assert contract.unknown(["Name", TARGET, TYPO, "Origin"]) == [TYPO]


@pytest.mark.slow
def test_one_file_gives_equal_predictions_online_and_in_batch(
    cars_dir, training_file, tmp_path, capsys
):
    frame = pd.read_csv(training_file)
    model, metadata = load_model_folder(cars_dir)
    expected = model.predict(frame[metadata.feature_names])

    store = str(tmp_path / "store")
    Registry(LocalStore(tmp_path / "store")).publish("cars", cars_dir, metadata)
    code = main(["score", "cars@1", "--data", str(training_file), "--out",
                 str(tmp_path / "scores.parquet"), "--store", store,
                 "--runs-dir", str(tmp_path / "runs"), "--output", "json"])
    assert code == 0, capsys.readouterr()
    batch = pq.read_table(tmp_path / "scores.parquet").column("prediction").to_numpy()

    columns = every_column(frame)
    with running_server(cars_dir, "cars", timeout_s=120) as server, \
            httpx.Client(timeout=60.0) as client:
        v1 = client.post(f"{server.base_url}/v1/models/cars:predict",
                         json=encode_v1(frame, columns, records=True))
        v2 = client.post(f"{server.base_url}/v2/models/cars/infer",
                         json=encode_v2(frame, columns))
        assert v1.status_code == 200, v1.text
        assert v2.status_code == 200, v2.text
        online_v1 = np.asarray(v1.json()["predictions"], dtype=float)
        online_v2 = np.asarray(v2.json()["outputs"][0]["data"], dtype=float)

        # Any other column is a typo guard: refused by name, and counted by reason.
        typo = frame.rename(columns={"Weight_in_lbs": TYPO}).assign(Weight_in_lbs=1.0)
        bad_v1 = client.post(f"{server.base_url}/v1/models/cars:predict",
                             json=encode_v1(typo, every_column(typo), records=True))
        bad_v2 = client.post(f"{server.base_url}/v2/models/cars/infer",
                             json=encode_v2(typo, every_column(typo)))
        # A missing feature is refused by name, with the target and dropped ones sent.
        short = frame.drop(columns=["Origin"])
        missing = client.post(f"{server.base_url}/v1/models/cars:predict",
                              json=encode_v1(short, every_column(short), records=True))
        metrics = client.get(f"{server.base_url}/metrics").text

    assert len(expected) == len(frame) == len(batch)
    np.testing.assert_allclose(online_v1, expected, rtol=1e-12)
    np.testing.assert_array_equal(online_v1, online_v2)
    np.testing.assert_array_equal(online_v1, batch)
    for response in (bad_v1, bad_v2):
        assert response.status_code == 400
        error = response.json()["error"]
        assert f"unknown field '{TYPO}'" in error and IGNORE_UNKNOWN_ENV in error
    assert missing.status_code == 400 and "missing feature 'Origin'" in missing.json()["error"]
    assert invalid_count(metrics, "extra_field") == 2
    assert invalid_count(metrics, "missing_field") == 1

    # Batch refuses the same typo by name; the switch ignores it, as online.
    typo.to_csv(tmp_path / "typo.csv", index=False)
    with pytest.raises(BatchInputError, match=rf"unknown columns \['{TYPO}'\]"):
        score_parquet(cars_dir, tmp_path / "typo.csv", tmp_path / "typo.parquet")
    assert not (tmp_path / "typo.parquet").exists()


def invalid_count(metrics: str, reason: str) -> float:
    """The value of ``kfp_mlops_invalid_inputs_total`` for model cars and ``reason``."""
    found = re.search(
        r'^kfp_mlops_invalid_inputs_total\{(?=[^}]*model="cars")(?=[^}]*reason="'
        + reason + r'")[^}]*\} (\S+)$', metrics, re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def test_ignoring_unknown_columns_on_request(cars_dir, training_file, tmp_path, monkeypatch):
    pytest.importorskip("kserve")
    from kfp_mlops.serving.decoding import InputSchemaError
    from kfp_mlops.serving.predictor import SklearnFolderModel

    frame = pd.read_csv(training_file).iloc[:20].assign(**{TYPO: 1.0})
    body = encode_v1(frame, every_column(frame), records=True)
    strict = SklearnFolderModel("cars", cars_dir)
    strict.load()
    with pytest.raises(InputSchemaError, match=f"unknown field '{TYPO}'") as refused:
        strict.predict_sync(body)
    assert refused.value.reason_code == "extra_field"
    monkeypatch.setenv(IGNORE_UNKNOWN_ENV, "true")
    lenient = SklearnFolderModel("cars", cars_dir)
    lenient.load()
    model, metadata = load_model_folder(cars_dir)
    np.testing.assert_allclose(lenient.predict_sync(body)["predictions"],
                               model.predict(frame[metadata.feature_names]))
    # Batch: the same switch, as a parameter.
    frame.to_csv(tmp_path / "in.csv", index=False)
    monkeypatch.delenv(IGNORE_UNKNOWN_ENV)
    with pytest.raises(BatchInputError, match=TYPO):
        score_parquet(cars_dir, tmp_path / "in.csv", tmp_path / "out.parquet")
    score_parquet(cars_dir, tmp_path / "in.csv", tmp_path / "out.parquet",
                  ignore_unknown_columns=True)
    np.testing.assert_allclose(pq.read_table(tmp_path / "out.parquet").column(0).to_numpy(),
                               model.predict(frame[metadata.feature_names]))


def test_a_bad_switch_value_is_named(cars_dir, monkeypatch):
    pytest.importorskip("kserve")
    from kfp_mlops.serving.__main__ import parse_args
    from kfp_mlops.serving.predictor import SklearnFolderModel

    monkeypatch.setenv(IGNORE_UNKNOWN_ENV, "maybe")
    with pytest.raises(ValueError, match=f"{IGNORE_UNKNOWN_ENV}='maybe' is not a boolean"):
        SklearnFolderModel("cars", cars_dir).load()
    assert parse_args(["--model_dir", "m", "--ignore_unknown_columns"]).ignore_unknown_columns
    assert parse_args(["--model_dir", "m"]).ignore_unknown_columns is None
