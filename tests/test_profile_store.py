"""The default cluster store works with a multi-user Kubeflow profile's own S3 key.

The S3 server is moto's on loopback (``tests/s3server.py``) behind the authorisation a
profile's key gets on Kubeflow 1.11 and master: the policy document that the profile
controller's ``sync.py`` of that KFP release writes (read from the vendored file, not
copied), enforced as SeaweedFS 4.00 enforces it (``tests/s3_policy.py``). The suite's
store, registry and prediction log then run through it for namespace ``team-x``: every
request they send must be allowed for ``team-x`` and refused for ``team-y``, so one
profile can neither miss a permission nor reach another's objects.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.faultkit.paths import make_model_folder
from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import PermissionDeniedError, open_store
from kfp_mlops.store_uri import CLUSTER_STORE_TEMPLATE, NAMESPACE_ENV
from tests.releases import RELEASES, by_release
from tests.s3_policy import (
    S3Request,
    SeaweedFsAuthorizer,
    aws_allows,
    profile_policy,
    seaweedfs_actions,
)
from tests.s3server import s3_server

MULTI_USER = [r for r in RELEASES if r.multi_user_s3_policy is not None]


class Recorder(SeaweedFsAuthorizer):
    """The SeaweedFS authoriser, remembering every request it judged."""

    def __init__(self, actions: list[str]):
        super().__init__(actions)
        self.seen: list[S3Request] = []

    def __call__(self, method: str, path: str, query: str) -> str | None:
        self.seen.append(S3Request.parse(method, path, query))
        return super().__call__(method, path, query)


def fresh_namespace(name: str) -> str:
    # moto keeps one in-process backend, so the "mlpipeline" bucket outlives a server.
    return f"{name}-{uuid.uuid4().hex[:8]}"


def authorizer(release, namespace: str) -> Recorder:
    return Recorder(seaweedfs_actions(profile_policy(release.multi_user_s3_policy, namespace)))


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("profile"))


def use_the_store(store, model_folder: Path, tmp_path: Path, namespace: str) -> None:
    """What the pipelines, the deploy step and the log sink do with the store."""
    store.ensure_ready()  # every CLI run and task starts with this probe
    store.put_bytes("data/penguins/v1/part-0.parquet", b"rows")
    assert store.get_bytes("data/penguins/v1/part-0.parquet") == b"rows"
    assert store.exists("data/penguins/v1/part-0.parquet")
    assert not store.exists("data/penguins/v2/part-0.parquet")
    assert store.list("data/") == ["data/penguins/v1/part-0.parquet"]
    assert "data" in store.list("")[0]
    assert store.children("data") == ["penguins"]
    assert store.create_if_absent("claims/1", b"a")
    assert not store.create_if_absent("claims/1", b"b")
    store.supports_conditional_writes()
    source = tmp_path / "report"
    source.mkdir()
    (source / "report.html").write_text("<html/>")
    (source / "COMMITTED").write_text("{}")
    store.publish_dir("reports/penguins/1", source, "COMMITTED")
    store.download_dir("reports/penguins/1", tmp_path / "back")
    with store.open_file("reports/penguins/1/report.html") as fh:
        assert fh.read() == b"<html/>"
    store.delete("claims/1")
    # The registry: publish, promote, download (what serving and monitoring read).
    registry = Registry(store)
    version = registry.publish("iris", model_folder, read_metadata(model_folder), blessed=True)
    registry.transition("iris", version.version, "production", reason="test", actor="t")
    registry.download("iris@production", tmp_path / "served")
    assert version.uri.startswith(f"s3://mlpipeline/private/{namespace}/kfp-mlops/models/")
    # The prediction log sink's writes.
    from kfp_mlops.live.prediction_log import InferenceEvent, PredictionLog

    log = PredictionLog(store, lambda model, version: ["a", "b"], max_rows=1)
    now = datetime.now(timezone.utc)
    request = {"instances": [[1.0, 2.0]]}
    for kind, body in (("org.kubeflow.serving.inference.request", request),
                       ("org.kubeflow.serving.inference.response", {"predictions": [1]})):
        log.accept(InferenceEvent(
            id="req-1", type=kind, source="pod", time=now, model="iris",
            data=json.dumps(body).encode(), content_type="application/json",
            namespace=namespace, component="predictor", endpoint="default", version="1",
        ))
    log.close()
    assert store.list("predictions/iris/")


@pytest.mark.slow
@by_release(MULTI_USER)
def test_default_store_stays_inside_what_the_profile_key_may_touch(
    release, model_folder, tmp_path, monkeypatch
):
    namespace = fresh_namespace("team-x")
    own, other = authorizer(release, namespace), authorizer(release, "team-y")
    with s3_server(bucket="mlpipeline", authorize=own):
        monkeypatch.setenv(NAMESPACE_ENV, namespace)
        store = open_store(CLUSTER_STORE_TEMPLATE)
        assert store.uri == f"s3://mlpipeline/private/{namespace}/kfp-mlops"
        use_the_store(store, model_folder, tmp_path, namespace)
    refused = [r.describe() for r in own.seen if not own.allows(r)]
    # HEAD bucket is refused (its root is not granted) and tolerated by ensure_bucket.
    assert refused == ["HEAD mlpipeline/"] * len(refused) and len(refused) <= 1
    kinds = {(r.method, r.action()) for r in own.seen}
    assert {("PUT", "Write"), ("GET", "Read"), ("GET", "List"), ("DELETE", "Write"),
            ("HEAD", "Read")} <= kinds, kinds
    leaked = [r.describe() for r in own.seen if other.allows(r)]
    assert leaked == []


@pytest.mark.slow
@by_release(MULTI_USER)
def test_another_profiles_store_is_refused(release, tmp_path, monkeypatch):
    with s3_server(bucket="mlpipeline", authorize=authorizer(release, "team-x")):
        monkeypatch.setenv(NAMESPACE_ENV, "team-y")
        store = open_store(CLUSTER_STORE_TEMPLATE)
        with pytest.raises(PermissionDeniedError):
            store.ensure_ready()
    # The old default, s3://mlpipeline/kfp-mlops, is outside every profile's prefixes.
    with s3_server(bucket="mlpipeline", authorize=authorizer(release, "team-x")):
        with pytest.raises(PermissionDeniedError):
            open_store("s3://mlpipeline/kfp-mlops").ensure_ready()


@by_release(MULTI_USER)
def test_the_policy_grants_object_arns_only_and_seaweedfs_reads_listing_prefixes(release):
    policy = profile_policy(release.multi_user_s3_policy, "team-x")
    resources = policy["Statement"][0]["Resource"]
    assert "arn:aws:s3:::mlpipeline/private/team-x/*" in resources
    assert all(r.startswith("arn:aws:s3:::mlpipeline/") and r.endswith("/*") for r in resources)
    listing = S3Request.parse("GET", "/mlpipeline", "list-type=2&prefix=private/team-x/kfp-mlops/")
    # On AWS S3 a listing is authorised on the bucket ARN, which the policy never names:
    assert not aws_allows(policy, listing)
    # SeaweedFS (the store KFP installs with these profiles) checks the prefix instead:
    seaweed = SeaweedFsAuthorizer(seaweedfs_actions(policy))
    assert seaweed.allows(listing)
    for refused in ("list-type=2&prefix=private/team-x", "list-type=2", "location="):
        assert not seaweed.allows(S3Request.parse("GET", "/mlpipeline", refused)), refused
    assert not seaweed.allows(S3Request.parse("HEAD", "/mlpipeline", ""))


@pytest.mark.slow
def test_default_store_with_the_installations_own_key(model_folder, tmp_path, monkeypatch):
    # Standalone KFP runs every pod in "kubeflow"; Kubeflow 1.10's profile controller
    # (KFP 2.5.0) copies the installation's MinIO key into each profile. Neither key is
    # scoped, so the namespace's prefix is simply a folder of the bucket.
    namespace = fresh_namespace("kubeflow")
    with s3_server(bucket="mlpipeline"):
        monkeypatch.setenv(NAMESPACE_ENV, namespace)
        store = open_store(CLUSTER_STORE_TEMPLATE)
        use_the_store(store, model_folder, tmp_path, namespace)


def _documented_policies(namespace: str) -> list[dict]:
    """The two JSON policies of docs/cluster.md ("Keys for the model server and the log sink")."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "cluster.md").read_text()
    section = text.split("### Keys for the model server and the log sink", 1)[1]
    blocks = [b.split("```", 1)[0] for b in section.split("```json")[1:]]
    return [json.loads(b.replace("NAMESPACE", namespace)) for b in blocks]


@pytest.mark.slow
def test_model_server_and_sink_policies_in_the_docs(model_folder, tmp_path, monkeypatch):
    from kfp_mlops.live.log_sink import RegistryLookups
    from kfp_mlops.live.prediction_log import InferenceEvent, PredictionLog

    namespace = fresh_namespace("team-x")
    server_policy, sink_policy = _documented_policies(namespace)
    monkeypatch.setenv(NAMESPACE_ENV, namespace)
    with s3_server(bucket="mlpipeline") as s3:  # the pipelines publish with the profile's key
        version = Registry(open_store(CLUSTER_STORE_TEMPLATE)).publish(
            "iris", model_folder, read_metadata(model_folder), blessed=True,
            stage="production")  # the sink files rows under the production version's contract
        root = f"private/{namespace}/kfp-mlops"
        model_prefix = f"{root}/models/iris/{version.version}"
        server = SeaweedFsAuthorizer(seaweedfs_actions(server_policy))
        # KServe's storage initializer: list the version's prefix (no slash), get each file.
        assert server.allows(S3Request.parse("GET", f"/{s3.bucket}", f"prefix={model_prefix}"))
        for key in open_store(CLUSTER_STORE_TEMPLATE).list(f"models/iris/{version.version}/"):
            assert server.allows(S3Request.parse("GET", f"/mlpipeline/{root}/{key}", ""))
        for write in (f"/mlpipeline/{model_prefix}/model.joblib",
                      f"/mlpipeline/{root}/predictions/iris/1/x.parquet"):
            assert not server.allows(S3Request.parse("PUT", write, ""))
        other = SeaweedFsAuthorizer(seaweedfs_actions(_documented_policies("team-y")[0]))
        assert not other.allows(S3Request.parse("GET", f"/mlpipeline/{model_prefix}/model.joblib",
                                                ""))
    sink = Recorder(seaweedfs_actions(sink_policy))
    with s3_server(bucket="mlpipeline", authorize=sink):
        store = open_store(CLUSTER_STORE_TEMPLATE)
        lookups = RegistryLookups(store)
        log = PredictionLog(store, lookups.features, version_for=lookups.production, max_rows=1)
        now = datetime.now(timezone.utc)
        for kind, body in (("org.kubeflow.serving.inference.request",
                            {"instances": [[5.1, 3.5, 1.4, 0.2]]}),
                           ("org.kubeflow.serving.inference.response", {"predictions": [1]})):
            log.accept(InferenceEvent(
                id="r1", type=kind, source="pod", time=now, model="iris",
                data=json.dumps(body).encode(), content_type="application/json",
                namespace=namespace, component="predictor", endpoint="default", version=None,
            ))
        log.close()
        assert store.list("predictions/iris/")
    refused = [r.describe() for r in sink.seen if not sink.allows(r)]
    assert refused == ["HEAD mlpipeline/"] * len(refused)
    writes = [r for r in sink.seen if r.action() == "Write"]
    assert writes and all(f"/{root}/predictions/" in "/" + r.key for r in writes)
    assert not sink.allows(S3Request.parse("PUT", f"/mlpipeline/{model_prefix}/model.joblib", ""))
