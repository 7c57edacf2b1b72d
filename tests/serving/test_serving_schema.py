"""Request parsing and schema checks, on the predictor loaded in-process (no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse, RequestedOutput

from kfp_mlops.serving.decoding import InputSchemaError, frame_from_v1
from kfp_mlops.serving.payloads import encode_v1, encode_v2
from kfp_mlops.serving.predictor import SklearnFolderModel


@pytest.fixture(scope="module")
def predictor(classifier_dir: Path) -> SklearnFolderModel:
    model = SklearnFolderModel("penguins", classifier_dir)
    assert model.load()
    return model


def v2_request(body: dict) -> InferRequest:
    inputs = [
        InferInput(i["name"], i["shape"], i["datatype"], i["data"], parameters={})
        for i in body["inputs"]
    ]
    outputs = [RequestedOutput(o["name"]) for o in body.get("outputs", [])] or None
    return InferRequest(
        "penguins", inputs, parameters=body.get("parameters"), request_outputs=outputs
    )


def test_v1_rows_and_records_give_model_predictions(predictor, penguins_rows):
    expected = predictor.model.predict(penguins_rows)
    for records in (False, True):
        body = encode_v1(penguins_rows, predictor.features, records=records)
        response = predictor.predict_sync(body)
        assert response["predictions"] == expected.tolist()


def test_missing_values_reach_the_imputers_as_nan(predictor, penguins_rows):
    frame, _ = frame_from_v1(predictor.features, encode_v1(penguins_rows, predictor.features))
    assert frame["sex"].isna().sum() == penguins_rows["sex"].isna().sum() > 0
    assert all(v is np.nan or isinstance(v, str) for v in frame["sex"])
    assert frame["year"].dtype == np.int64


def test_v2_columns_with_probabilities(predictor, penguins_rows):
    response = predictor.predict_sync(
        v2_request(encode_v2(penguins_rows, predictor.features, with_probabilities=True))
    )
    assert isinstance(response, InferResponse)
    outputs = {o.name: o for o in response.outputs}
    assert outputs["predictions"].data == predictor.model.predict(penguins_rows).tolist()
    proba = np.asarray(outputs["probabilities"].data).reshape(len(penguins_rows), 3)
    np.testing.assert_allclose(proba, predictor.model.predict_proba(penguins_rows))


ROW = ["Torgersen", 39.1, 18.7, 181.0, 3750.0, "male", 2007]
RECORD = dict(
    zip(
        [
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex",
            "year",
        ],
        ROW,
        strict=True,
    )
)


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {"instances": [{k: v for k, v in RECORD.items() if k != "island"}]},
            "island",
            "missing_field",
        ),
        ({"instances": [{**RECORD, "colour": "blue"}]}, "colour", "extra_field"),
        ({"instances": [[*ROW[:1], "long", *ROW[2:]]]}, "bill_length_mm", "wrong_type"),
        ({"instances": [[7, *ROW[1:]]]}, "island", "wrong_type"),
        ({"instances": [[*ROW[:1], True, *ROW[2:]]]}, "bill_length_mm", "wrong_type"),
        ({"instances": [[*ROW[:6], None]]}, "year", "null_value"),
        ({"instances": [{**RECORD, "year": float("nan")}]}, "year", "null_value"),
        ({"instances": [ROW, ROW[:5]]}, "instances[1]", "row_length"),
        ({"instances": []}, "instances", "malformed"),
        ({"rows": [ROW]}, "rows", "extra_field"),
        ([ROW], None, "malformed"),
        (b'{"instances": [', None, "malformed"),
    ],
)
def test_bad_v1_input_names_the_field(predictor, body, field, reason):
    with pytest.raises(InputSchemaError) as caught:
        predictor.predict_sync(body)
    assert caught.value.reason_code == reason
    if field:
        assert field in str(caught.value)


def test_bad_v2_inputs_name_the_input(predictor, penguins_rows):
    good = encode_v2(penguins_rows.head(2), predictor.features)
    dropped = {**good, "inputs": [i for i in good["inputs"] if i["name"] != "sex"]}
    retyped = {
        **good,
        "inputs": [
            {**i, "datatype": "FP64", "data": [1.0, 2.0]} if i["name"] == "island" else i
            for i in good["inputs"]
        ],
    }
    short = {
        **good,
        "inputs": [
            {**i, "shape": [1], "data": i["data"][:1]} if i["name"] == "year" else i
            for i in good["inputs"]
        ],
    }
    for body, field in ((dropped, "sex"), (retyped, "island"), (short, "year")):
        with pytest.raises(InputSchemaError, match=field):
            predictor.predict_sync(v2_request(body))
    with pytest.raises(InputSchemaError, match="logits"):
        predictor.predict_sync(v2_request({**good, "outputs": [{"name": "logits"}]}))


def test_regressor_refuses_probabilities_and_takes_a_row_tensor(regressor_dir, diabetes_rows):
    predictor = SklearnFolderModel("diabetes", regressor_dir)
    predictor.load()
    with pytest.raises(InputSchemaError, match="probabilities"):
        predictor.predict_sync(
            {**encode_v1(diabetes_rows, predictor.features), "return_probabilities": True}
        )
    tensor = {
        "inputs": [
            {
                "name": "x",
                "shape": list(diabetes_rows.shape),
                "datatype": "FP64",
                "data": diabetes_rows.to_numpy().tolist(),
            }
        ]
    }
    response = predictor.predict_sync(v2_request(tensor))
    np.testing.assert_allclose(response.outputs[0].data, predictor.model.predict(diabetes_rows))


def test_model_metadata_lists_the_features(predictor):
    inputs = predictor.get_input_types()
    assert [i["name"] for i in inputs] == [f.name for f in predictor.features]
    assert {i["name"]: i["datatype"] for i in inputs}["island"] == "BYTES"
    assert [o["name"] for o in predictor.get_output_types()] == ["predictions", "probabilities"]


def test_encode_v1_sends_null_for_missing(penguins_rows, predictor):
    body = encode_v1(penguins_rows, predictor.features, records=True)
    assert any(r["sex"] is None for r in body["instances"])
    assert pd.isna(penguins_rows["sex"]).any()
