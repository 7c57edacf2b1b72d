"""The official ``model-registry`` 0.3.4 client reads back what the suite registered.

The client is a consumer here (``kfp-mlops[registry]``/``[test]`` pin it): it talks to
the spec-validating double over HTTP, so both the suite's writes and the client's reads
must fit the v1alpha3 contract. Also: the double answers a newer client's ``/v1``
paths with 404, as the v0.3.4 server does.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from kfp_mlops.model.kubeflow_registry import after_stage_change
from kfp_mlops.model.publish import publish_model
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import open_store
from tests.kubeflow_registry.official_client import read_registered_model

pytest.importorskip("model_registry")

BLESSING = json.dumps({"blessed": True, "reason": "ok", "comparisons": []})


def test_the_official_client_reads_models_versions_and_artifacts(mr, model_folder, tmp_path):
    store = str(tmp_path / "store")
    for _ in range(2):
        publish_model(model_folder, {"accuracy": 0.97}, store, "iris", stage="staging",
                      reason="blessed", run_id="run-1", blessing_json=BLESSING,
                      model_registry=mr.url)
    registry = Registry(open_store(store))
    registry.transition("iris", 2, "production", reason="go", actor="me")
    after_stage_change(registry, "iris", mr.url)

    read = read_registered_model(mr.url, "iris")
    assert read["model"]["name"] == "iris"
    assert read["model"]["custom_properties"]["production_version"] == "2"
    versions = {v["name"]: v for v in read["versions"]}
    assert sorted(versions) == ["1", "2"]
    assert versions["2"]["custom_properties"]["stage"] == "production"
    assert versions["1"]["custom_properties"]["stage"] == "staging"
    assert versions["2"]["author"] == "run-1"
    assert versions["2"]["custom_properties"]["metric.accuracy"] == 0.97
    assert versions["2"]["custom_properties"]["blessed"] is True
    for number in ("1", "2"):
        artifact = versions[number]["artifact"]
        store_version = registry.get(f"iris@{number}")
        assert artifact["uri"] == store_version.uri
        assert artifact["model_format_name"] == "sklearn"
        assert artifact["model_format_version"] == "1"
        assert artifact["custom_properties"]["model_sha256"] == store_version.metadata.model_sha256


def test_a_newer_clients_v1_paths_get_404_from_the_v0_3_4_server(mr):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{mr.url}/api/model_registry/v1/registered_models")  # noqa: S310
    assert caught.value.code == 404
    with urllib.request.urlopen(  # noqa: S310
        f"{mr.url}/api/model_registry/v1alpha3/registered_models"
    ) as answer:
        assert json.loads(answer.read())["items"] == []
