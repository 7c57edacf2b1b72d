"""Date columns become calendar features, the same in training, serving and batch scoring.

The data: scikit-learn's bundled breast-cancer set, with a date column, a timestamp
column and '?' in 5 % of 'mean radius', written as CSV and ingested as a user's file is.
"""

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kfp_mlops.data.ingest import ingest_to_parquet, read_dataset
from kfp_mlops.data.sources import bundled_table
from kfp_mlops.model.calendar import CalendarFeatures
from kfp_mlops.model.package import load_model_folder
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.steps import train
from kfp_mlops.serving.batch import BatchInputError, score_parquet


def _dated(path):
    frame = bundled_table("breast_cancer")
    rng = np.random.default_rng(3)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, len(frame)), "D")
    frame["seen_on"] = days.strftime("%Y-%m-%d")
    frame["seen_at"] = (days + pd.to_timedelta(rng.integers(0, 24, len(frame)), "h")).strftime(
        "%Y-%m-%dT%H:%M:%S")
    radius = frame["mean radius"].astype(object)
    radius[rng.random(len(frame)) < 0.05] = "?"
    frame["mean radius"] = radius
    frame.to_csv(path, index=False)
    return frame


def test_calendar_parts():
    step = CalendarFeatures().fit(pd.DataFrame({
        "day": ["2024-03-05", "2024-12-31", None],
        "at": ["2024-03-05T10:30:00", "2024-03-06T23:00:00+02:00", "garbage"]}))
    assert step.parts_ == {"day": ["year", "month", "day_of_week"],
                           "at": ["year", "month", "day_of_week", "hour"]}
    out = step.transform(pd.DataFrame({"day": ["2024-03-05"], "at": ["2024-03-06T23:00:00+02:00"]}))
    assert out.tolist() == [[2024, 3, 1, 2024, 3, 2, 21]]  # Tuesday; 21:00 UTC
    assert np.isnan(step.transform(pd.DataFrame({"day": ["no"], "at": [None]}))).all()
    assert step.get_feature_names_out().tolist()[:3] == ["day_year", "day_month",
                                                        "day_day_of_week"]


@pytest.fixture(scope="module")
def dated_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("dated")
    frame = _dated(root / "cancer.csv")
    ingest_to_parquet(str(root / "cancer.csv"), root / "data.parquet")
    settings = TrainingSettings(target="target", task="classification")
    metadata = train(root / "data.parquet", root / "model", settings)
    return root, frame, metadata


def test_trained_with_calendar_features(dated_model):
    root, _, metadata = dated_model
    kinds = {f.name: f.kind for f in metadata.features}
    assert kinds["seen_on"] == kinds["seen_at"] == "datetime"
    assert kinds["mean radius"] == "numeric"  # '?' read as missing, not 439 categories
    assert metadata.date_features == {"seen_on": ["year", "month", "day_of_week"],
                                      "seen_at": ["year", "month", "day_of_week", "hour"]}
    assert "seen_on" not in metadata.dropped_columns


def test_batch_scoring_reads_placeholders_and_dates(dated_model, tmp_path):
    root, frame, _ = dated_model
    model, metadata = load_model_folder(root / "model")
    rows = frame.drop(columns=["target"]).head(50)
    rows.to_csv(tmp_path / "batch.csv", index=False)
    score_parquet(root / "model", tmp_path / "batch.csv", tmp_path / "out.parquet")
    scored = pq.read_table(tmp_path / "out.parquet").column("prediction").to_pylist()
    expected = model.predict(read_dataset(root / "data.parquet").drop(columns=["target"])
                             .head(50))
    assert scored == list(expected)
    # A value that is neither a number nor a known placeholder is refused by name.
    bad = rows.copy()
    bad.loc[bad.index[0], "mean radius"] = "twelve"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(BatchInputError, match="'twelve', which is neither a number"):
        score_parquet(root / "model", tmp_path / "bad.csv", tmp_path / "bad.parquet")
    # Parquet timestamps are scored as the text training saw.
    stamped = read_dataset(root / "data.parquet").drop(columns=["target"]).head(50)
    stamped["seen_at"] = pd.to_datetime(stamped["seen_at"])
    stamped.to_parquet(tmp_path / "stamped.parquet")
    score_parquet(root / "model", tmp_path / "stamped.parquet", tmp_path / "stamped-out.parquet")
    assert pq.read_table(tmp_path / "stamped-out.parquet").column("prediction").to_pylist() \
        == list(expected)


@pytest.mark.slow
def test_served_v1_and_v2_with_dates(dated_model):
    from kfp_mlops.serving.process import running_server

    root, _, metadata = dated_model
    model, _ = load_model_folder(root / "model")
    row = read_dataset(root / "data.parquet").drop(columns=["target"]).iloc[[7]]
    expected = str(model.predict(row)[0])
    record = {k: (None if isinstance(v, float) and np.isnan(v) else v)
              for k, v in row.iloc[0].to_dict().items()}
    with running_server(root / "model", "dated", timeout_s=90) as server:
        v1 = httpx.post(f"{server.base_url}/v1/models/dated:predict",
                        json={"instances": [record]}, timeout=30)
        assert v1.status_code == 200, v1.text
        assert [str(p) for p in v1.json()["predictions"]] == [expected]
        inputs = [{"name": f.name, "shape": [1],
                   "datatype": "BYTES" if f.kind != "numeric" else "FP64",
                   "data": [record[f.name]]} for f in metadata.features]
        v2 = httpx.post(f"{server.base_url}/v2/models/dated/infer",
                        json={"inputs": inputs, "parameters": {"content_type": "pd"}}, timeout=30)
        assert v2.status_code == 200, v2.text
        assert [str(p) for p in v2.json()["outputs"][0]["data"]] == [expected]
