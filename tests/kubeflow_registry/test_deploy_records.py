"""The deploy step records the InferenceService and its namespace in the Model Registry.

Three doubles over HTTP on loopback: S3 (moto), the Kubernetes API with KServe's
controller (``tests/deploy/k8s_api_double.py``) and the Model Registry v0.3.4
(``model_registry_double.py``, every exchange checked against the spec).
"""

from __future__ import annotations

import pytest

from kfp_mlops.model.kubeflow_registry import read_properties
from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import open_store
from tests.deploy.k8s_api_double import Behaviour, KubeApiDouble, serve

NS = "team-a"
NAME = "penguins"


@pytest.fixture
def kube(monkeypatch, tmp_path):
    """The Kubernetes API double in Knative mode, reached through a kubeconfig."""
    state = KubeApiDouble()
    state.default_mode = "Knative"
    state.default_behaviour = Behaviour(gets_until_reconciled=0)
    server, thread = serve(state)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", state.host)  # the cluster's DNS and ingress
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: double\n"
        f"clusters: [{{name: double, cluster: {{server: '{state.host}'}}}}]\n"
        "users: [{name: me, user: {token: not-a-secret}}]\n"
        "contexts: [{name: double, context: {cluster: double, user: me}}]\n"
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(config))
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _published(s3, model_folder, n):
    store = s3.uri("registry")
    registry = Registry(open_store(store))
    for _ in range(n):
        registry.publish(NAME, model_folder, read_metadata(model_folder), blessed=True)
    return store, registry


@pytest.mark.slow
def test_release_records_serving_environment_inference_service_and_serves(
    kube, s3, mr, model_folder
):
    from kfp_mlops.serving.release import release_version

    store, registry = _published(s3, model_folder, 2)
    first = release_version(store, NAME, 1, namespace=NS, model_registry=mr.url)
    assert first.passed, first.reason
    second = release_version(store, NAME, 2, namespace=NS, model_registry=mr.url)
    assert second.passed, second.reason

    versions = {v["name"]: v for v in mr.entities["ModelVersion"].values()}
    assert read_properties(versions["2"])["stage"] == "production"
    assert versions["1"]["state"] == "ARCHIVED"
    (env,) = mr.entities["ServingEnvironment"].values()
    assert env["name"] == NS
    (isvc,) = mr.entities["InferenceService"].values()
    assert isvc["name"] == NAME
    assert isvc["servingEnvironmentId"] == env["id"]
    assert isvc["registeredModelId"] == next(iter(mr.entities["RegisteredModel"]))
    assert isvc["modelVersionId"] == versions["2"]["id"]
    assert isvc["desiredState"] == "DEPLOYED"
    assert isvc["runtime"] == "kfp-mlops-sklearn"
    assert read_properties(isvc)["storage_uri"] == registry.get(f"{NAME}@2").uri
    serves = sorted(mr.entities["ServeModel"].values(), key=lambda s: int(s["id"]))
    assert [s["modelVersionId"] for s in serves] == [versions["1"]["id"], versions["2"]["id"]]
    assert {s["lastKnownState"] for s in serves} == {"COMPLETE"}


@pytest.mark.slow
def test_deploy_by_model_registry_uri(kube, s3, mr, model_folder):
    from kfp_mlops.serving.release import release_version

    store, _ = _published(s3, model_folder, 1)
    from kfp_mlops.model.kubeflow_registry import after_stage_change

    after_stage_change(Registry(open_store(store)), NAME, mr.url)  # published earlier
    result = release_version(store, NAME, 1, namespace=NS, model_registry=mr.url,
                             serve_from_model_registry=True)
    assert result.passed, result.reason
    body = kube.body(NS, NAME)
    assert body["spec"]["predictor"]["model"]["storageUri"] == f"model-registry://{NAME}/1"
    (isvc,) = mr.entities["InferenceService"].values()
    assert read_properties(isvc)["storage_uri"] == f"model-registry://{NAME}/1"
