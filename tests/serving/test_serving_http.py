"""The real KServe ModelServer (subprocess on 127.0.0.1) answering real HTTP requests."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from kfp_mlops.model.package import load_model_folder
from kfp_mlops.serving.payloads import encode_v1, encode_v2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(timeout=30.0) as c:
        yield c


def test_v1_rows_records_and_probabilities(
    classifier_url, classifier_dir: Path, penguins_rows, client
):
    model, meta = load_model_folder(classifier_dir)
    url = f"{classifier_url}/v1/models/penguins:predict"
    rows = client.post(url, json=encode_v1(penguins_rows, meta.features))
    records = client.post(
        url, json=encode_v1(penguins_rows, meta.features, records=True, return_probabilities=True)
    )
    assert rows.status_code == records.status_code == 200, rows.text + records.text
    expected = model.predict(penguins_rows).tolist()
    assert rows.json()["predictions"] == expected
    assert records.json()["predictions"] == expected
    assert records.json()["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_allclose(records.json()["probabilities"], model.predict_proba(penguins_rows))


def test_v2_pandas_columns_with_probabilities(
    classifier_url, classifier_dir, penguins_rows, client
):
    model, meta = load_model_folder(classifier_dir)
    response = client.post(
        f"{classifier_url}/v2/models/penguins/infer",
        json=encode_v2(penguins_rows, meta.features, with_probabilities=True),
    )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["predictions"]["data"] == model.predict(penguins_rows).tolist()
    assert outputs["probabilities"]["shape"] == [len(penguins_rows), 3]
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (-1, 3)), model.predict_proba(penguins_rows)
    )


def test_v2_metadata_describes_the_features(classifier_url, client):
    body = client.get(f"{classifier_url}/v2/models/penguins").json()
    assert [i["name"] for i in body["inputs"]][:2] == ["island", "bill_length_mm"]


ROW = ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "male", 2007]
NAMES = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]


def _v2_body(**changes):
    inputs = []
    for name, value in zip(NAMES, ROW, strict=True):
        datatype = "BYTES" if isinstance(value, str) else "FP64"
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    for name, change in changes.items():
        inputs = [
            ({**i, **change} if i["name"] == name else i)
            for i in inputs
            if not (i["name"] == name and change is None)
        ]
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


BAD = [
    ("v1", {"instances": [dict(zip(NAMES[1:], ROW[1:], strict=True))]}, "island"),
    (
        "v1",
        {"instances": [{**dict(zip(NAMES, ROW, strict=True)), "beak_colour": "red"}]},
        "beak_colour",
    ),
    ("v1", {"instances": [[*ROW[:2], "deep", *ROW[3:]]]}, "bill_depth_mm"),
    ("v1", {"instances": [[*ROW[:6], None]]}, "year"),
    ("v1", {"instances": [ROW[:4]]}, "instances[0]"),
    ("v1", b'{"instances": [["Torgersen", 39.1', "line 1 column"),  # KServe: 400
    ("v1", {"instances": [ROW], "return_probability": True}, "return_probability"),
    ("v2", _v2_body(sex=None), "sex"),
    ("v2", _v2_body(island={"datatype": "FP64", "data": [1.0]}), "island"),
    ("v2", _v2_body(year={"data": [None]}), "year"),
    ("v2", _v2_body(body_mass_g={"shape": [2]}), "body_mass_g"),
    ("v2", b'{"inputs": [{"name": "island"', "JSON"),
    ("v2", {"inputs": "island"}, "inputs"),
]


@pytest.mark.parametrize(("protocol", "body", "named"), BAD)
def test_bad_input_is_a_400_naming_the_field(classifier_url, client, protocol, body, named):
    url = (
        f"{classifier_url}/v1/models/penguins:predict"
        if protocol == "v1"
        else f"{classifier_url}/v2/models/penguins/infer"
    )
    if isinstance(body, bytes):
        response = client.post(url, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(url, json=body)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]
    assert "Traceback" not in response.text
    # The server stays up and still answers a good request.
    good = client.post(f"{classifier_url}/v1/models/penguins:predict", json={"instances": [ROW]})
    assert good.status_code == 200 and good.json()["predictions"] == ["Adelie"]


def test_curl_style_body_without_json_content_type_is_accepted(classifier_url, client):
    response = client.post(
        f"{classifier_url}/v1/models/penguins:predict",
        content=b'{"instances": [["Dream", 46.5, 17.9, 192, 3500, "female", 2007]]}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text


def test_metrics_count_outcomes_and_predictions(classifier_url, client):
    url = f"{classifier_url}/v1/models/penguins:predict"
    assert client.post(url, json={"instances": [ROW, ROW]}).status_code == 200
    assert client.post(url, json={"instances": [ROW[:3]]}).status_code == 400
    assert (
        client.post(
            f"{classifier_url}/v1/models/nope:predict", json={"instances": [ROW]}
        ).status_code
        == 404
    )
    text = client.get(f"{classifier_url}/metrics").text
    assert 'kfp_mlops_requests_total{model="penguins",outcome="success",protocol="v1"}' in text
    assert (
        'kfp_mlops_requests_total{model="penguins",outcome="invalid_input",protocol="v1"}' in text
    )
    assert 'kfp_mlops_requests_total{model="unknown",outcome="invalid_input",protocol="v1"}' in text
    assert 'kfp_mlops_predicted_class_total{class="Adelie",model="penguins"}' in text
    assert 'kfp_mlops_invalid_inputs_total{model="penguins",reason="row_length"}' in text
    assert (
        'kfp_mlops_request_duration_seconds_bucket{le="0.1",model="penguins",protocol="v1"}' in text
    )
    assert 'kfp_mlops_rows_total{model="penguins",protocol="v1"}' in text


def test_regression_over_http_and_value_histogram(
    regressor_url, regressor_dir, diabetes_rows, client
):
    model, meta = load_model_folder(regressor_dir)
    v1 = client.post(
        f"{regressor_url}/v1/models/diabetes:predict", json=encode_v1(diabetes_rows, meta.features)
    )
    v2 = client.post(
        f"{regressor_url}/v2/models/diabetes/infer",
        json={
            "inputs": [
                {
                    "name": "rows",
                    "shape": list(diabetes_rows.shape),
                    "datatype": "FP64",
                    "data": diabetes_rows.to_numpy().ravel().tolist(),
                }
            ]
        },
    )
    assert v1.status_code == v2.status_code == 200, v1.text + v2.text
    expected = model.predict(diabetes_rows)
    np.testing.assert_allclose(v1.json()["predictions"], expected)
    np.testing.assert_allclose(v2.json()["outputs"][0]["data"], expected)
    proba = client.post(
        f"{regressor_url}/v1/models/diabetes:predict",
        json={**encode_v1(diabetes_rows, meta.features), "return_probabilities": True},
    )
    assert proba.status_code == 400 and "probabilities" in proba.json()["error"]
    text = client.get(f"{regressor_url}/metrics").text
    assert 'kfp_mlops_prediction_value_bucket{le="200.0",model="diabetes"}' in text
    assert f'kfp_mlops_prediction_value_count{{model="diabetes"}} {2.0 * len(expected)}' in text
