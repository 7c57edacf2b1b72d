"""The deploy step and the run's Role, read as each supported Kubeflow release reads them.

The deploy step runs against the Kubernetes API double (``k8s_api_double.py``; no
cluster here) whose API server validates every body, unknown fields refused, against
the CRDs of the release's KServe (0.15.0 for Kubeflow 1.10, 0.15.2 for 1.11, 0.16.0 for
master). The Knative revision KServe would build from the created InferenceService and
the suite's runtime is checked with that release's Knative field masks. The verbs the
deploy step uses are taken from the requests the double received in every scenario,
and ``manifests/rbac/role.yaml`` is checked against them and against KFP's own
``pipeline-runner`` Role of each release (vendored under tests/fixtures/releases).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from kfp_mlops.live.logged import VERSION_ANNOTATION
from kfp_mlops.serving.deploy import (
    KSERVE_VERSION_ENV,
    OLDEST_KSERVE,
    InferenceServiceSpec,
    deploy_model,
    inference_service,
    kserve_version,
    logger_annotations_supported,
)
from tests.deploy.k8s_api_double import Behaviour, KubeApiDouble, serve
from tests.deploy.test_deploy import spec_fields
from tests.k8s_schemas import K8sValidationError, kserve_crds, validate_crd_object
from tests.knative_rules import kserve_revision_pod_spec, revision_refusals
from tests.manifests import kustomize_lite
from tests.releases import KSERVE_VERSIONS, RELEASES, by_kserve, by_release

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "manifests" / "rbac" / "role.yaml"
NS, NAME = "kubeflow-user-example-com", "penguins"
STORE = f"s3://mlpipeline/private/{NS}/kfp-mlops/models/{NAME}"
V1, V2, V3 = (f"{STORE}/{n}" for n in (1, 2, 3))
SINK = "http://kfp-mlops-log-sink"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _run(double: KubeApiDouble, monkeypatch, scenario) -> None:
    server, thread = serve(double)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", double.host)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    configuration = client.Configuration()
    configuration.host = double.host
    api = client.ApiClient(configuration)
    clock = FakeClock()

    def deploy(uri, **kwargs):
        service = InferenceServiceSpec(NAME, NS, uri, **spec_fields(kwargs))
        return deploy_model(service, api_client=api, sleep=clock.sleep,
                            clock=lambda: clock.now, timeout_s=60, poll_interval_s=2, **kwargs)

    try:
        scenario(deploy)
    finally:
        api.close()
        server.shutdown()
        server.server_close()
        thread.join()


def _knative_scenarios(deploy, kserve: str | None):
    created = deploy(V1, log_url=SINK, model_version="1", kserve=kserve)
    assert created.status == "created", created.reason
    promoted = deploy(V2, canary_traffic_percent=10, model_version="2", kserve=kserve)
    assert promoted.status == "promoted", promoted.reason
    rolled_back = deploy(V3, canary_traffic_percent=10, model_version="3", kserve=kserve)
    assert rolled_back.status == "rolled_back", rolled_back.reason


def _release_double(release, mode: str) -> KubeApiDouble:
    double = KubeApiDouble(crds=kserve_crds(release.kserve), default_mode=mode)
    double.behaviours[V3] = Behaviour(model_ready=False)
    return double


@by_release()
def test_deploy_step_in_knative_mode_passes_the_releases_kserve_and_knative(
    release, monkeypatch
):
    double = _release_double(release, "Knative")  # Kubeflow's inferenceservice-config default
    monkeypatch.setenv(KSERVE_VERSION_ENV, release.kserve)
    _run(double, monkeypatch, lambda deploy: _knative_scenarios(deploy, None))
    body = double.body(NS, NAME)
    logger = body["spec"]["predictor"]["logger"]
    assert ("metadataAnnotations" in logger) == logger_annotations_supported(release.kserve)
    # What KServe hands Knative: the created predictor merged into the suite's runtime.
    runtime = {(o["kind"]): o for o in kustomize_lite.build(
        REPO / "manifests" / "overlays" / "knative")}["ServingRuntime"]
    pod = kserve_revision_pod_spec(body, runtime)
    assert revision_refusals(pod, release.knative_fieldmask) == []


@by_release()
def test_default_deploy_step_fits_the_oldest_kserve_on_every_release(release, monkeypatch):
    monkeypatch.delenv(KSERVE_VERSION_ENV, raising=False)
    assert kserve_version() == OLDEST_KSERVE
    double = _release_double(release, "Standard")
    double.behaviours.clear()

    def scenario(deploy):
        assert deploy(V1, log_url=SINK, model_version="1").status == "created"
        assert deploy(V2, model_version="2").status == "promoted"

    _run(double, monkeypatch, scenario)
    assert "metadataAnnotations" not in double.body(NS, NAME)["spec"]["predictor"]["logger"]


@by_kserve()
def test_created_body_for_each_version_is_valid_there_and_on_every_newer_kserve(kserve):
    order = list(KSERVE_VERSIONS)
    target = OLDEST_KSERVE if kserve == "newest" else kserve
    body = inference_service(InferenceServiceSpec(NAME, NS, V1, log_url=SINK, model_version="1",
                                                  kserve=target))
    for later in order[order.index(kserve):]:
        validate_crd_object(body, kserve_crds(later))


def test_the_annotation_field_is_what_kserve_0_15_0_refuses():
    body = inference_service(InferenceServiceSpec(NAME, NS, V1, log_url=SINK, model_version="1",
                                                  kserve="0.15.1"))
    assert body["spec"]["predictor"]["logger"]["metadataAnnotations"] == [VERSION_ANNOTATION]
    with pytest.raises(K8sValidationError, match=r"logger\.metadataAnnotations: unknown field"):
        validate_crd_object(body, kserve_crds("0.15.0"))


def test_a_kserve_version_that_is_no_version_names_the_fix(monkeypatch):
    monkeypatch.setenv(KSERVE_VERSION_ENV, "latest")
    with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH"):
        kserve_version()
    assert kserve_version("v0.16.0") == "0.16.0"


# -- RBAC ------------------------------------------------------------------------------


def _rules(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]


def _covers(outer: dict, group: str, resource: str, verb: str, names) -> bool:
    return (
        group in outer.get("apiGroups", [])
        and (resource in outer["resources"] or "*" in outer["resources"])
        and (verb in outer["verbs"] or "*" in outer["verbs"])
        and (not outer.get("resourceNames") or set(names or []) <= set(outer["resourceNames"])
             and names)
    )


def _grants(rules: list[dict]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (group, resource, verb, tuple(rule.get("resourceNames") or ()))
        for rule in rules for group in rule["apiGroups"]
        for resource in rule["resources"] for verb in rule["verbs"]
    }


@pytest.fixture(scope="module")
def deploy_verbs(tmp_path_factory) -> set[tuple[str, str]]:
    """The (resource, verb) pairs of every deploy scenario, in both modes."""
    monkeypatch = pytest.MonkeyPatch()
    found: set[tuple[str, str]] = set()
    try:
        for mode in ("Knative", "Standard"):
            double = _release_double(RELEASES[-1], mode)
            if mode == "Standard":
                double.behaviours.clear()
                double.behaviours[V2] = Behaviour(model_ready=False)

                def scenario(deploy):
                    deploy(V1, log_url=SINK, model_version="1")
                    assert deploy(V2, model_version="2").status == "rolled_back"
            else:
                def scenario(deploy):
                    _knative_scenarios(deploy, None)
            _run(double, monkeypatch, scenario)
            found |= double.verbs()
    finally:
        monkeypatch.undo()
    return found


def test_role_grants_the_deploy_step_exactly_the_verbs_it_uses(deploy_verbs):
    assert deploy_verbs == {("inferenceservices", v) for v in ("get", "create", "patch")}
    kserve = {(r, v) for g, r, v, _ in _grants(_rules(ROLE)) if g == "serving.kserve.io"}
    assert kserve == deploy_verbs


@by_release()
def test_role_grants_nothing_beyond_kfps_pipeline_runner_but_the_inference_services(release):
    runner = _rules(release.kfp_dir / "pipeline-runner-role.yaml")
    extra = []
    for group, resource, verb, names in _grants(_rules(ROLE)):
        if group == "serving.kserve.io":
            continue  # the deploy step's own calls, checked above
        if (group, resource) == ("argoproj.io", "workflowtaskresults"):
            # Argo's executor writes these (3.5 in KFP 2.5.0, 3.7 after); the runner Role
            # grants them from 2.15.0 and Kubeflow 1.10's multi-user edit role does too.
            assert verb in ("create", "patch")
            continue
        if not any(_covers(rule, group, resource, verb, names) for rule in runner):
            extra.append((group, resource, verb, names))
    assert extra == []


def test_role_is_minimal_in_shape():
    for rule in _rules(ROLE):
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        if rule["apiGroups"] == [""]:  # core kinds: only named objects, read only
            assert rule["verbs"] == ["get"] and rule.get("resourceNames"), rule


def test_workflowtaskresults_rule_matches_kfps_own_from_2_15_0():
    ours = [r for r in _rules(ROLE) if r["resources"] == ["workflowtaskresults"]]
    for release in RELEASES[1:]:
        theirs = [r for r in _rules(release.kfp_dir / "pipeline-runner-role.yaml")
                  if r["resources"] == ["workflowtaskresults"]]
        assert ours == theirs, release.name
