"""deploy_model against an HTTP double of the Kubernetes API server.

There is no cluster here, so ``tests/deploy/k8s_api_double.py`` stands in for the API
server at the network boundary: a real ``kubernetes.client.ApiClient`` sends real HTTP
requests to it on 127.0.0.1, and it answers with the server's status codes, Status
bodies, CRD validation and a Ready condition that a fake KServe controller flips to True
or False. Smoke requests go over HTTP to model endpoints the double also serves. Time is
a fake clock advanced by the injected ``sleep``, so no test depends on wall time.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from kfp_mlops.serving.deploy import (
    DeployError,
    KubeConfigError,
    deploy_model,
    load_kube_config,
    v2_infer_smoke_request,
)
from tests.deploy.k8s_api_double import Behaviour, KubeApiDouble, serve

NS = "team-a"
NAME = "penguins"
V1 = "s3://mlpipeline/kfp-mlops/models/penguins/1"
V2 = "s3://mlpipeline/kfp-mlops/models/penguins/2"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


@pytest.fixture
def double():
    state = KubeApiDouble()
    server, thread = serve(state)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def api_client(double):
    configuration = client.Configuration()
    configuration.host = double.host
    api = client.ApiClient(configuration)
    yield api
    api.close()


@pytest.fixture
def clock():
    return FakeClock()


def deploy(api_client, clock, uri, **kwargs):
    kwargs.setdefault("timeout_s", 60)
    kwargs.setdefault("poll_interval_s", 2)
    return deploy_model(
        NAME, NS, uri, api_client=api_client, sleep=clock.sleep, clock=lambda: clock.now, **kwargs
    )


def predictor(double):
    return double.body(NS, NAME)["spec"]["predictor"]


def test_first_deploy_creates_the_service_and_smoke_checks_it(double, api_client, clock):
    result = deploy(api_client, clock, V1)

    assert result.status == "created", result.reason
    assert result.succeeded
    assert result.previous_storage_uri is None
    assert result.url == f"{double.host}/serving/{NAME}"
    assert [m for m, _ in double.writes] == ["POST"]
    spec = predictor(double)
    assert spec["model"] == {
        "modelFormat": {"name": "sklearn"},
        "runtime": "kfp-mlops-sklearn",
        "protocolVersion": "v2",
        "storageUri": V1,
    }
    assert spec["serviceAccountName"] == "kfp-mlops-s3"
    # The default smoke request hit the V2 model-ready endpoint over HTTP.
    assert ("GET", f"/serving/{NAME}/v2/models/{NAME}/ready", "") in double.requests
    assert clock.sleeps >= 1  # it waited for the controller rather than trusting the create


def test_second_deploy_with_canary_patches_then_promotes(double, api_client, clock):
    deploy(api_client, clock, V1)

    result = deploy(api_client, clock, V2, canary_traffic_percent=10)

    assert result.status == "promoted", result.reason
    assert result.previous_storage_uri == V1
    patches = [(m, body) for m, body in double.writes if m == "PATCH"]
    assert [body["spec"]["predictor"].get("canaryTrafficPercent") for _, body in patches] == [
        10,
        None,
    ]
    assert all(t == "application/merge-patch+json" for m, t in double.api_calls() if m == "PATCH")
    spec = predictor(double)
    assert spec["model"]["storageUri"] == V2
    assert "canaryTrafficPercent" not in spec  # promoted: the new revision takes all traffic
    assert double.body(NS, NAME)["metadata"]["generation"] == 3


def test_canary_whose_model_fails_to_load_is_rolled_back(double, api_client, clock):
    deploy(api_client, clock, V1)
    double.behaviours[V2] = Behaviour(
        ready=False, terminal=True, message="model.joblib: sha256 mismatch"
    )

    result = deploy(api_client, clock, V2, canary_traffic_percent=20)

    assert result.status == "rolled_back"
    assert not result.succeeded
    assert result.previous_storage_uri == V1
    assert "Ready=False RevisionFailed: model.joblib: sha256 mismatch" in result.reason
    assert "BlockedByFailedLoad" in result.reason
    assert predictor(double)["model"]["storageUri"] == V1
    assert "canaryTrafficPercent" not in predictor(double)
    assert clock.now < 60  # KServe said it gave up, so no waiting for the timeout


def test_ready_false_that_never_recovers_rolls_back_at_timeout_with_its_message(
    double, api_client, clock
):
    deploy(api_client, clock, V1)
    double.behaviours[V2] = Behaviour(
        ready=False, reason="ProgressDeadlineExceeded", message="0/1 replicas available"
    )

    result = deploy(api_client, clock, V2, timeout_s=30)

    assert result.status == "rolled_back"
    assert result.reason.startswith(f"rolled back to {V1}: timed out after 30s")
    assert "Ready=False ProgressDeadlineExceeded: 0/1 replicas available" in result.reason
    assert predictor(double)["model"]["storageUri"] == V1


def test_timeout_rolls_back(double, api_client, clock):
    deploy(api_client, clock, V1)
    double.behaviours[V2] = Behaviour(gets_until_reconciled=10**9)

    result = deploy(api_client, clock, V2, canary_traffic_percent=10, timeout_s=30)

    assert result.status == "rolled_back"
    assert "timed out after 30s" in result.reason
    assert "not reconciled generation 2" in result.reason
    assert clock.now >= 30
    assert predictor(double)["model"]["storageUri"] == V1
    assert "canaryTrafficPercent" not in predictor(double)


def test_smoke_failure_over_http_rolls_back(double, api_client, clock):
    deploy(api_client, clock, V1)
    double.behaviours[V2] = Behaviour(model_ready=False)

    result = deploy(api_client, clock, V2, canary_traffic_percent=10)

    assert result.status == "rolled_back"
    assert "smoke request" in result.reason and "503" in result.reason
    assert predictor(double)["model"]["storageUri"] == V1


def test_injected_smoke_request_decides_and_sees_the_service(double, api_client, clock):
    deploy(api_client, clock, V1)
    seen = []

    def smoke(url, model_name):
        seen.append((url, model_name))
        raise AssertionError("predictions drifted from the evaluation set")

    result = deploy(api_client, clock, V2, smoke_request=smoke)

    assert seen == [(f"{double.host}/serving/{NAME}", NAME)]
    assert result.status == "rolled_back"
    assert "predictions drifted" in result.reason
    assert predictor(double)["model"]["storageUri"] == V1


def test_v2_infer_smoke_request_posts_the_payload(double, api_client, clock):
    payload = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]}
    result = deploy(api_client, clock, V1, smoke_request=v2_infer_smoke_request(payload))

    assert result.status == "created", result.reason
    assert ("POST", f"/serving/{NAME}/v2/models/{NAME}/infer", "application/json") in (
        double.requests
    )


def test_first_deploy_that_never_gets_ready_is_reported_failed(double, api_client, clock):
    double.behaviours[V1] = Behaviour(ready=False, terminal=True, message="no sklearn")

    result = deploy(api_client, clock, V1)

    assert result.status == "failed"
    assert "nothing to roll back to" in result.reason and "no sklearn" in result.reason


def test_api_refusal_names_the_call_and_the_fix(double, api_client, clock):
    with pytest.raises(DeployError, match=r"create InferenceService team-a/penguins .* HTTP 422"):
        deploy(api_client, clock, V1, runtime=["not", "a", "string"])


def test_canary_percent_out_of_range_is_rejected(api_client, clock):
    with pytest.raises(ValueError, match="canary_traffic_percent=100"):
        deploy(api_client, clock, V1, canary_traffic_percent=100)


def test_load_kube_config_without_any_cluster_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubeConfigError, match="no cluster configured"):
        load_kube_config()


def test_deploy_without_api_client_uses_the_kubeconfig(double, clock, tmp_path, monkeypatch):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: double\n"
        f"clusters: [{{name: double, cluster: {{server: '{double.host}'}}}}]\n"
        "users: [{name: me, user: {token: not-a-secret}}]\n"
        "contexts: [{name: double, context: {cluster: double, user: me}}]\n"
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    result = deploy_model(NAME, NS, V1, sleep=clock.sleep, clock=lambda: clock.now)

    assert result.status == "created", result.reason
