"""deploy_model against an HTTP double of the Kubernetes API server, KServe and Knative.

There is no cluster here, so ``tests/deploy/k8s_api_double.py`` stands in for the API
server at the network boundary: a real ``kubernetes.client.ApiClient`` sends real HTTP
requests to it on 127.0.0.1, and it answers with the server's status codes, Status
bodies, CRD validation and a Ready condition that a fake KServe controller flips to True
or False. In Knative mode it models KServe's revisions, traffic split and tag URLs. Smoke
requests go over HTTP to cluster-local host names, which the double routes as Knative's
gateway does (``http_proxy`` points urllib at it), so a broken new revision answers 503
while the old one answers 200. Time is a fake clock advanced by the injected ``sleep``,
so no test depends on wall time.
"""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request

import pytest
from kubernetes import client

from kfp_mlops.serving.deploy import (
    TAG_ROUTING_ANNOTATION,
    DeployError,
    InferenceServiceSpec,
    KubeConfigError,
    cluster_local_url,
    default_smoke_request,
    deploy_model,
    deployment_mode,
    load_kube_config,
    v2_infer_smoke_request,
)
from tests.deploy.k8s_api_double import Behaviour, KubeApiDouble, serve
from tests.k8s_schemas import validate_crd_object

NS = "team-a"
NAME = "penguins"
V1 = "s3://mlpipeline/kfp-mlops/models/penguins/1"
V2 = "s3://mlpipeline/kfp-mlops/models/penguins/2"
REV1, REV2, REV3 = (f"{NAME}-predictor-0000{n}" for n in (1, 2, 3))
LATEST_URL = f"http://latest-{NAME}-predictor.{NS}.svc.cluster.local"
STANDARD_ADDRESS = f"http://{NAME}-predictor.{NS}.svc.cluster.local"
KNATIVE_ADDRESS = f"http://{NAME}.{NS}.svc.cluster.local"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


@pytest.fixture
def double(monkeypatch):
    state = KubeApiDouble()
    server, thread = serve(state)
    # The cluster's DNS and ingress: urllib sends every non-loopback request to the double.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", state.host)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def knative(double):
    """A cluster whose KServe creates InferenceServices in Knative mode by default."""
    double.default_mode = "Knative"
    return double


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
    service = InferenceServiceSpec(NAME, NS, uri, **spec_fields(kwargs))
    return deploy_model(
        service, api_client=api_client, sleep=clock.sleep, clock=lambda: clock.now, **kwargs
    )


def spec_fields(kwargs):
    """Take the InferenceServiceSpec fields out of ``kwargs`` (the rest: how to deploy)."""
    names = {f.name for f in dataclasses.fields(InferenceServiceSpec)}
    return {k: kwargs.pop(k) for k in list(kwargs) if k in names}


def predictor(double):
    return double.body(NS, NAME)["spec"]["predictor"]


def predictor_status(double):
    return double.body(NS, NAME)["status"]["components"]["predictor"]


def ready(double):
    body = double.body(NS, NAME)
    conditions = {c["type"]: c["status"] for c in body["status"]["conditions"]}
    reconciled = body["status"]["observedGeneration"] == body["metadata"]["generation"]
    return reconciled and conditions["Ready"] == "True"


def get_status(url):
    # A fresh opener reads http_proxy now; urlopen's global one keeps what an earlier
    # test in the process saw.
    try:
        with urllib.request.build_opener().open(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# -- first deployment and plain rollouts ------------------------------------------------


def test_first_deploy_creates_the_service_and_smoke_checks_it(double, api_client, clock):
    result = deploy(api_client, clock, V1)

    assert result.status == "created", result.reason
    assert result.succeeded
    assert result.previous_storage_uri is None
    assert result.url == STANDARD_ADDRESS
    assert [m for m, _ in double.writes] == ["POST"]
    spec = predictor(double)
    assert spec["model"] == {
        "modelFormat": {"name": "sklearn"},
        "runtime": "kfp-mlops-sklearn",
        "protocolVersion": "v2",
        "storageUri": V1,
        # The signing key from an optional Secret, as in manifests/base/inferenceservice.
        "env": [{"name": "KFP_MLOPS_SIGNING_KEY", "valueFrom": {"secretKeyRef": {
            "name": "kfp-mlops-signing-key", "key": "key", "optional": True}}}],
    }
    assert spec["serviceAccountName"] == "kfp-mlops-s3"
    # The default smoke request hit the V2 model-ready endpoint over HTTP.
    assert ("GET", f"{STANDARD_ADDRESS}/v2/models/{NAME}/ready", "") in double.requests
    assert clock.sleeps >= 1  # it waited for the controller rather than trusting the create


def test_standard_mode_plain_rollout_is_promoted(double, api_client, clock):
    deploy(api_client, clock, V1)

    result = deploy(api_client, clock, V2)

    assert result.status == "promoted", result.reason
    assert result.revision is None
    assert predictor(double)["model"]["storageUri"] == V2
    assert "annotations" not in double.body(NS, NAME)["metadata"]  # no tags outside Knative
    assert double.served[-1][1:] == (f"/v2/models/{NAME}/ready", "deployment", 200)


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
    assert ready(double)  # the rollback was waited on


def test_canary_in_standard_mode_is_refused_before_anything_is_written(double, api_client, clock):
    deploy(api_client, clock, V1)
    writes = len(double.writes)

    with pytest.raises(ValueError, match=r"needs KServe's Knative mode.*runs in Standard mode"):
        deploy(api_client, clock, V2, canary_traffic_percent=10)

    assert len(double.writes) == writes
    assert predictor(double)["model"]["storageUri"] == V1


def test_legacy_mode_names_are_normalised():
    assert deployment_mode({"status": {"deploymentMode": "Serverless"}}) == "Knative"
    annotated = {"metadata": {"annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}}}
    assert deployment_mode(annotated) == "Standard"
    assert deployment_mode({}) is None


# -- Knative: the canary is what the smoke request tests ---------------------------------


def test_second_deploy_with_canary_checks_the_new_revision_then_promotes(
    knative, api_client, clock
):
    deploy(api_client, clock, V1)
    first = len(knative.served)
    during = {}

    def smoke(url, model_name):
        during.setdefault("body", knative.body(NS, NAME))  # the first call: the canary
        default_smoke_request(url, model_name)

    result = deploy(api_client, clock, V2, canary_traffic_percent=10, smoke_request=smoke)

    assert result.status == "promoted", result.reason
    assert result.previous_storage_uri == V1
    assert result.revision == REV2
    assert result.url == LATEST_URL
    assert f"revision {REV2} (100% of traffic)" in result.reason
    # While the canary was checked, KServe split 10/90 and published both tag URLs.
    canary = during["body"]["status"]["components"]["predictor"]
    assert canary["traffic"] == [
        {
            "tag": "latest",
            "latestRevision": True,
            "percent": 10,
            "revisionName": REV2,
            "url": f"http://latest-{NAME}-predictor.{NS}.example.com",
        },
        {
            "tag": "prev",
            "latestRevision": False,
            "percent": 90,
            "revisionName": REV1,
            "url": f"http://prev-{NAME}-predictor.{NS}.example.com",
        },
    ]
    assert canary["latestRolledoutRevision"] == REV1
    # Both smoke requests (canary, then after promotion) reached the new revision.
    smoked = [(host, rev, code) for host, _, rev, code in knative.served[first:]]
    assert smoked == [
        (f"latest-{NAME}-predictor.{NS}.svc.cluster.local", REV2, 200),
        (f"latest-{NAME}-predictor.{NS}.svc.cluster.local", REV2, 200),
    ]
    patches = [body for method, body in knative.writes if method == "PATCH"]
    assert [p["spec"]["predictor"].get("canaryTrafficPercent") for p in patches] == [10, None]
    assert all(p["metadata"]["annotations"] == {TAG_ROUTING_ANNOTATION: "true"} for p in patches)
    assert all(t == "application/merge-patch+json" for m, t in knative.api_calls() if m == "PATCH")
    assert predictor(knative)["model"]["storageUri"] == V2
    assert "canaryTrafficPercent" not in predictor(knative)  # promoted: all traffic to V2
    status = predictor_status(knative)
    assert status["latestRolledoutRevision"] == REV2
    assert status["previousRolledoutRevision"] == REV1
    assert [(t["revisionName"], t["percent"]) for t in status["traffic"]] == [(REV2, 100)]
    assert knative.body(NS, NAME)["metadata"]["generation"] == 3


def test_broken_canary_beside_a_healthy_old_revision_is_rolled_back(knative, api_client, clock):
    deploy(api_client, clock, V1)
    knative.behaviours[V2] = Behaviour(model_ready=False)  # Ready, but the model is broken
    service_answers = []

    def smoke(url, model_name):
        # What the old check saw: the service URL, where 90% still reach the old revision.
        for _ in range(10):
            service_answers.append(get_status(f"{KNATIVE_ADDRESS}/v2/models/{model_name}/ready"))
        default_smoke_request(url, model_name)

    result = deploy(api_client, clock, V2, canary_traffic_percent=10, smoke_request=smoke)

    assert sorted(service_answers) == [200] * 9 + [503]
    assert result.status == "rolled_back"
    assert not result.succeeded
    assert f"smoke request to revision {REV2} (10% of traffic) at {LATEST_URL} failed" in (
        result.reason
    )
    assert "503" in result.reason
    # Traffic went back to the running old revision first, then the old spec was restored.
    patches = [body["spec"]["predictor"] for method, body in knative.writes if method == "PATCH"]
    assert [(p["model"]["storageUri"], p["canaryTrafficPercent"]) for p in patches] == [
        (V2, 10),
        (V1, 0),
        (V1, None),
    ]
    assert predictor(knative)["model"]["storageUri"] == V1
    assert "canaryTrafficPercent" not in predictor(knative)
    assert ready(knative)  # the rollback was waited on
    status = predictor_status(knative)
    assert status["latestRolledoutRevision"] == REV3  # V1 again, in a fresh revision
    assert [r.storage_uri for r in knative.revisions(NS, NAME)] == [V1, V2, V1]
    assert get_status(f"{KNATIVE_ADDRESS}/v2/models/{NAME}/ready") == 200


def test_failure_after_promotion_is_rolled_back_too(knative, api_client, clock):
    deploy(api_client, clock, V1)
    calls = []

    def smoke(url, model_name):
        calls.append(url)
        if len(calls) == 2:
            raise RuntimeError("latency doubled under full traffic")

    result = deploy(api_client, clock, V2, canary_traffic_percent=10, smoke_request=smoke)

    assert result.status == "rolled_back"
    assert "failed after promotion: latency doubled" in result.reason
    patches = [body["spec"]["predictor"] for method, body in knative.writes if method == "PATCH"]
    assert [(p["model"]["storageUri"], p["canaryTrafficPercent"]) for p in patches] == [
        (V2, 10),
        (V2, None),
        (V1, 0),
        (V1, None),
    ]
    assert ready(knative)
    assert predictor_status(knative)["traffic"][0]["revisionName"] == REV3


def test_canary_whose_model_fails_to_load_is_rolled_back(knative, api_client, clock):
    deploy(api_client, clock, V1)
    served = len(knative.served)
    knative.behaviours[V2] = Behaviour(
        ready=False, terminal=True, message="model.joblib: sha256 mismatch"
    )

    result = deploy(api_client, clock, V2, canary_traffic_percent=20)

    assert result.status == "rolled_back"
    assert not result.succeeded
    assert result.previous_storage_uri == V1
    assert "Ready=False RevisionFailed: model.joblib: sha256 mismatch" in result.reason
    assert "BlockedByFailedLoad" in result.reason
    assert predictor(knative)["model"]["storageUri"] == V1
    assert "canaryTrafficPercent" not in predictor(knative)
    assert ready(knative)
    assert clock.now < 60  # KServe said it gave up, so no waiting for the timeout
    assert len(knative.served) == served  # no smoke request: the new revision never got Ready


def test_timeout_rolls_back(knative, api_client, clock):
    deploy(api_client, clock, V1)
    knative.behaviours[V2] = Behaviour(gets_until_reconciled=10**9)

    result = deploy(api_client, clock, V2, canary_traffic_percent=10, timeout_s=30)

    assert result.status == "rolled_back"
    assert "timed out after 30s" in result.reason
    assert "not reconciled generation 2" in result.reason
    assert clock.now >= 30
    assert predictor(knative)["model"]["storageUri"] == V1
    assert "canaryTrafficPercent" not in predictor(knative)
    assert ready(knative)


def test_rollback_that_never_gets_ready_keeps_traffic_pinned_and_says_so(
    knative, api_client, clock
):
    deploy(api_client, clock, V1)
    knative.behaviours[V2] = Behaviour(model_ready=False)
    knative.behaviours[V1] = Behaviour(gets_until_reconciled=10**9)  # from now on

    result = deploy(api_client, clock, V2, canary_traffic_percent=10, timeout_s=30)

    assert result.status == "rolled_back"
    assert "the restored spec did not become Ready (timed out after 30s" in result.reason
    assert "traffic stays pinned to the previously rolled-out revision" in result.reason
    assert predictor(knative)["canaryTrafficPercent"] == 0  # not un-pinned blindly


def test_knative_rollout_without_canary_smoke_checks_the_latest_tag(knative, api_client, clock):
    deploy(api_client, clock, V1)

    result = deploy(api_client, clock, V2)

    assert result.status == "promoted", result.reason
    assert (result.url, result.revision) == (LATEST_URL, REV2)
    assert knative.served[-1][2:] == (REV2, 200)


def test_injected_smoke_request_decides_and_sees_the_service(double, api_client, clock):
    deploy(api_client, clock, V1)
    seen = []

    def smoke(url, model_name):
        seen.append((url, model_name))
        raise AssertionError("predictions drifted from the evaluation set")

    result = deploy(api_client, clock, V2, smoke_request=smoke)

    assert seen == [(STANDARD_ADDRESS, NAME)]
    assert result.status == "rolled_back"
    assert "predictions drifted" in result.reason
    assert predictor(double)["model"]["storageUri"] == V1


def test_injected_smoke_request_gets_the_canary_url_in_knative_mode(knative, api_client, clock):
    deploy(api_client, clock, V1)
    seen = []

    result = deploy(
        api_client,
        clock,
        V2,
        canary_traffic_percent=25,
        smoke_request=lambda url, model: seen.append((url, model)),
    )

    assert result.status == "promoted", result.reason
    assert seen == [(LATEST_URL, NAME), (LATEST_URL, NAME)]


def test_v2_infer_smoke_request_posts_the_payload(double, api_client, clock):
    payload = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]}
    result = deploy(api_client, clock, V1, smoke_request=v2_infer_smoke_request(payload))

    assert result.status == "created", result.reason
    assert ("POST", f"{STANDARD_ADDRESS}/v2/models/{NAME}/infer", "application/json") in (
        double.requests
    )


def test_status_the_double_writes_is_valid_against_the_upstream_crd(knative, api_client, clock):
    deploy(api_client, clock, V1)
    bodies = []
    deploy(
        api_client,
        clock,
        V2,
        canary_traffic_percent=10,
        smoke_request=lambda url, model: bodies.append(knative.body(NS, NAME)),
    )
    bodies.append(knative.body(NS, NAME))

    for body in bodies:
        validate_crd_object(body)  # status included
    assert len(bodies) == 3


def test_cluster_local_url_of_a_tag():
    url = f"http://latest-{NAME}-predictor.{NS}.example.com"
    assert cluster_local_url(url, NS) == LATEST_URL
    assert cluster_local_url(LATEST_URL + "/", NS) == LATEST_URL


# -- failures outside the rollout --------------------------------------------------------


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


def write_kubeconfig(path, host):
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: double\n"
        f"clusters: [{{name: double, cluster: {{server: '{host}'}}}}]\n"
        "users: [{name: me, user: {token: not-a-secret}}]\n"
        "contexts: [{name: double, context: {cluster: double, user: me}}]\n"
    )


def test_deploy_without_api_client_uses_the_kubeconfig(double, clock, tmp_path, monkeypatch):
    write_kubeconfig(tmp_path / "config", double.host)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))

    result = deploy_model(InferenceServiceSpec(NAME, NS, V1), sleep=clock.sleep,
                          clock=lambda: clock.now)

    assert result.status == "created", result.reason


# -- the registry follows the rollout ----------------------------------------------------


@pytest.mark.slow
def test_release_of_a_broken_canary_leaves_the_registry_unchanged(
    knative, s3, tmp_path, monkeypatch
):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from kfp_mlops.model.package import Feature, ModelMetadata, write_model_folder
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.serving.release import release_version
    from kfp_mlops.storage import open_store

    data = load_iris(as_frame=True)
    folder = tmp_path / "model"
    metadata = ModelMetadata(
        task="classification",
        target="target",
        features=[Feature(c, "float64", "numeric") for c in data.data.columns],
        estimator="LogisticRegression",
        classes=[0, 1, 2],
        metrics={"accuracy": 0.97},
    )
    write_model_folder(
        LogisticRegression(max_iter=200).fit(data.data, data.target), metadata, folder
    )
    store = s3.uri("registry")
    registry = Registry(open_store(store))
    v1 = registry.publish(NAME, folder, metadata, blessed=True)
    v2 = registry.publish(NAME, folder, metadata, blessed=True)
    # release_version polls with wall time: let the controller answer at the first GET.
    knative.default_behaviour = Behaviour(gets_until_reconciled=0)
    knative.behaviours[v2.uri] = Behaviour(gets_until_reconciled=0, model_ready=False)
    write_kubeconfig(tmp_path / "config", knative.host)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))

    first = release_version(store, NAME, v1.version, namespace=NS)
    assert first.passed, first.reason
    assert registry.get(f"{NAME}@production").version == v1.version
    history = len(registry.history(NAME))

    second = release_version(store, NAME, v2.version, namespace=NS, canary_traffic_percent=10)

    assert not second.passed
    assert second.status == "rolled_back"
    assert "503" in second.reason
    assert registry.get(f"{NAME}@production").version == v1.version
    assert len(registry.history(NAME)) == history
    assert predictor(knative)["model"]["storageUri"] == v1.uri


# -- the prediction log (docs/live-loop.md) ----------------------------------------------


@pytest.mark.parametrize("kserve", ["0.15.0", "0.15.1", "0.16.0"])
def test_logger_and_version_annotation_follow_the_served_version(
    knative, api_client, clock, kserve
):
    from kfp_mlops.live.prediction_log import VERSION_ANNOTATION

    sink = "http://kfp-mlops-log-sink"
    deploy(api_client, clock, V1, log_url=sink, model_version="1", kserve=kserve)
    created = knative.body(NS, NAME)
    validate_crd_object(created)  # the logger spec is KServe's own
    expected = {"mode": "all", "url": sink}
    if kserve != "0.15.0":  # the CRD has logger.metadataAnnotations from 0.15.1
        expected["metadataAnnotations"] = [VERSION_ANNOTATION]
    assert predictor(knative)["logger"] == expected
    assert created["metadata"]["annotations"][VERSION_ANNOTATION] == "1"

    knative.behaviours[V2] = Behaviour(model_ready=False)
    result = deploy(api_client, clock, V2, canary_traffic_percent=10, model_version="2",
                    kserve=kserve)
    assert result.status == "rolled_back"
    versions = [(body["metadata"]["annotations"] or {}).get(VERSION_ANNOTATION)
                for method, body in knative.writes if method == "PATCH"]
    # The canary's events name version 2; the rollback names version 1 again.
    assert versions == ["2", "1", "1"]
    assert knative.body(NS, NAME)["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
    assert predictor(knative)["logger"]["url"] == sink  # a patch keeps the logger
