"""Gates as artifacts: publish and deploy re-check the verdicts themselves, whatever the wiring.

The component bodies run as KFP's executor runs them (``python_func`` with artifacts whose
``path`` is a local file), so a pipeline that wires publish outside the gate's ``dsl.If``
still cannot publish a rejected model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kfp.dsl import Artifact, Metrics, Model
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kfp_mlops.components.model import publish
from kfp_mlops.components.serving import deploy
from kfp_mlops.gates import GateNotPassedError, write_verdict
from kfp_mlops.model.package import Feature, ModelMetadata, write_model_folder
from kfp_mlops.model.publish import publish_model
from kfp_mlops.model.registry import Registry, RegistryError
from kfp_mlops.storage import LocalStore


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=200).fit(data.data, data.target)
    metadata = ModelMetadata(
        task="classification", target="target", estimator="LogisticRegression",
        features=[Feature(c, "float64", "numeric") for c in data.data.columns], classes=[0, 1, 2],
    )
    folder = tmp_path_factory.mktemp("model")
    write_model_folder(model, metadata, folder)
    return folder


def _verdict(tmp_path: Path, name: str, passed: bool, reason: str) -> Artifact:
    path = tmp_path / name
    blessing = {"blessed": passed, "reason": reason, "comparisons": []}
    write_verdict(path, passed, reason, blessing=blessing)
    return Artifact(uri=str(path))


def _publish(model_folder, store, blessing):
    return publish.python_func(
        model=Model(uri=str(model_folder)), metrics=Metrics(uri="unused"), blessing=blessing,
        store=str(store), model_name="iris",
    )


def test_publish_refuses_a_failed_blessing_and_publishes_nothing(tmp_path, model_folder):
    store = tmp_path / "store"
    failed = _verdict(tmp_path, "blessing", False, "accuracy 0.10 < 0.70")
    with pytest.raises(GateNotPassedError, match="accuracy 0.10 < 0.70"):
        _publish(model_folder, store, failed)
    assert Registry(LocalStore(store)).list_models() == []


def test_publish_refuses_without_a_readable_verdict(tmp_path, model_folder):
    store = tmp_path / "store"
    with pytest.raises(GateNotPassedError, match="no readable verdict"):
        _publish(model_folder, store, Artifact(uri=str(tmp_path / "missing")))
    assert Registry(LocalStore(store)).list_models() == []


def test_publish_with_a_passing_blessing_records_it(tmp_path, model_folder):
    store = tmp_path / "store"
    outputs = _publish(model_folder, store, _verdict(tmp_path, "b", True, "blessed: first model"))
    version = Registry(LocalStore(store)).get(f"iris@{outputs.version}")
    assert version.blessed


def test_a_model_published_with_no_blessing_is_recorded_not_blessed(tmp_path, model_folder):
    store = tmp_path / "store"
    published = publish_model(model_folder, {"accuracy": 0.1}, str(store), "iris",
                              stage="staging")
    registry = Registry(LocalStore(store))
    assert not registry.get("iris@1").blessed and not published.blessed
    with pytest.raises(RegistryError, match="force"):
        registry.transition("iris", 1, "production", reason="try", actor="test")


@pytest.mark.parametrize("blessed, served, refused_by", [
    (False, True, "model"), (True, False, "serving"), (False, False, "model"),
])
def test_deploy_refuses_unless_both_gates_passed(tmp_path, model_folder, blessed, served,
                                                 refused_by):
    store = tmp_path / "store"
    publish_model(model_folder, {"accuracy": 0.9}, str(store), "iris", stage="staging",
                  blessing_json='{"blessed": true, "reason": "ok", "comparisons": []}')
    with pytest.raises(GateNotPassedError, match=f"the {refused_by}"):
        deploy.python_func(
            store=str(store), model_name="iris", version=1,
            blessing=_verdict(tmp_path, "blessing", blessed, "bless reason"),
            infra_validation=_verdict(tmp_path, "infra", served, "serving reason"),
        )
    registry = Registry(LocalStore(store))
    assert registry.get("iris@1").stage == "staging"  # nothing promoted
