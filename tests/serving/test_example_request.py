"""The request `kfp-mlops serve` prints: typical values of the model's training data."""

import json
import shlex

import pandas as pd

from kfp_mlops.model.package import Feature, ModelMetadata
from kfp_mlops.serving.example import curl_example, typical_row


def _metadata():
    return ModelMetadata(task="classification", target="y", estimator="x", features=[
        Feature("age", "int64", "numeric"), Feature("income", "float64", "numeric"),
        Feature("city", "object", "categorical")])


def test_typical_values_are_medians_and_most_frequent(tmp_path):
    path = tmp_path / "data.parquet"
    pd.DataFrame({"age": [20, 30, 40, None], "income": [1.5, 2.5, 100.0, 3.5],
                  "city": ["Oslo", "Rome", "Rome", None], "y": [0, 1, 0, 1]}).to_parquet(path)
    assert typical_row(_metadata(), path) == {"age": 30, "income": 3.5, "city": "Rome"}


def test_without_data_the_request_still_has_every_feature():
    row = typical_row(_metadata(), None)
    assert row == {"age": 0, "income": 0.0, "city": ""}
    command = curl_example("http://127.0.0.1:8080", "m", row)
    parts = shlex.split(command)
    assert parts[:4] == ["curl", "-s", "-H", "Content-Type: application/json"]
    assert parts[4] == "http://127.0.0.1:8080/v1/models/m:predict"
    assert json.loads(parts[6]) == {"instances": [row]}
