"""Publishing and stage changes mirrored into the Kubeflow Model Registry (v1alpha3).

Against ``model_registry_double`` over HTTP on 127.0.0.1: every request the suite sends
and every answer is checked against the vendored v0.3.4 OpenAPI document (the ``mr``
fixture fails a test that broke it).
"""

from __future__ import annotations

import json
import threading

import pytest

from kfp_mlops.model.kubeflow_registry import (
    IN_CLUSTER_URL,
    ModelRegistryClient,
    ModelRegistryError,
    after_publish,
    after_stage_change,
    pending,
    read_model,
    read_properties,
    resolve_url,
    sync_model,
)
from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.publish import publish_model
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import LocalStore, open_store

BLESSING = json.dumps({
    "blessed": True, "reason": "accuracy 0.97 >= 0.7",
    "comparisons": [{"metric": "accuracy", "direction": "higher", "challenger": 0.97,
                     "champion": None, "threshold": 0.7, "tolerance": 0.01, "passed": True,
                     "why": "ok"}],
})


def _publish(model_folder, store, mr_url, **kw):
    return publish_model(model_folder, {"accuracy": 0.97, "f1_macro": 0.96}, str(store), "iris",
                         stage="staging", reason="blessed: accuracy 0.97",
                         run_id="run-abc", blessing_json=BLESSING, model_registry=mr_url, **kw)


def _versions(mr):
    return {v["name"]: v for v in mr.entities["ModelVersion"].values()}


def test_resolve_url_takes_the_flag_the_environment_and_the_in_cluster_alias(monkeypatch):
    monkeypatch.delenv("KFP_MLOPS_MODEL_REGISTRY", raising=False)
    assert resolve_url(None) is None
    assert resolve_url("kubeflow") == IN_CLUSTER_URL
    monkeypatch.setenv("KFP_MLOPS_MODEL_REGISTRY", "http://mr:8080/")
    assert resolve_url(None) == "http://mr:8080"
    assert resolve_url("http://other:8080") == "http://other:8080"
    with pytest.raises(ModelRegistryError, match="server root"):
        resolve_url("http://mr:8080/api/model_registry/v1alpha3")
    with pytest.raises(ModelRegistryError, match="http"):
        resolve_url("mr:8080")


def test_publish_registers_model_version_and_artifact(mr, model_folder, tmp_path):
    store = tmp_path / "store"
    published = _publish(model_folder, store, mr.url, blessing_policy="accuracy>=0.7;tolerance=0.01")

    (model,) = mr.entities["RegisteredModel"].values()
    assert model["name"] == "iris"
    props = read_properties(model)
    assert props["production_version"] == "none"
    assert props["kfp_mlops_history_tip"] == Registry(open_store(str(store))).tip("iris")
    version = _versions(mr)["1"]
    assert version["author"] == "run-abc"
    assert version["description"] == "blessed: accuracy 0.97"
    assert version["state"] == "LIVE"
    vp = read_properties(version)
    meta = read_metadata(model_folder)
    assert vp["stage"] == "staging"
    assert vp["registration"] == "complete"
    assert vp["blessed"] is True
    assert vp["blessing_reason"] == "accuracy 0.97 >= 0.7"
    assert vp["blessing_policy"] == "accuracy>=0.7;tolerance=0.01"
    assert vp["metric.accuracy"] == 0.97 and vp["metric.f1_macro"] == 0.96
    assert vp["dataset_version"] == "d-1234"
    assert vp["dataset_uri"] == LocalStore(store).uri_for("datasets/d-1234")
    assert vp["kfp_run_id"] == "run-abc"
    assert vp["sklearn_version"] == meta.sklearn_version
    assert vp["kfp_mlops_version"] == meta.kfp_mlops_version
    assert vp["model_sha256"] == published.metadata.model_sha256
    (artifact,) = mr.entities["Artifact"].values()
    assert mr.artifact_parent[artifact["id"]] == version["id"]
    assert artifact["artifactType"] == "model-artifact"
    assert artifact["uri"] == published.uri
    assert artifact["modelFormatName"] == "sklearn"
    assert artifact["modelFormatVersion"] == "1"
    assert artifact["serviceAccountName"] == "kfp-mlops-s3"
    assert artifact["modelSourceKind"] == "kfp" and artifact["modelSourceId"] == "run-abc"
    assert pending(LocalStore(store), "iris") is None


def test_sync_is_idempotent(mr, model_folder, tmp_path):
    store = tmp_path / "store"
    _publish(model_folder, store, mr.url)
    registry = Registry(open_store(str(store)))
    writes = len([e for e in mr.exchanges if e.method != "GET"])
    report = sync_model(registry, "iris", ModelRegistryClient(mr.url))
    assert report.created == [] and report.updated == []
    assert len([e for e in mr.exchanges if e.method != "GET"]) == writes


def test_promotion_rollback_and_archive_map_to_state_and_stage(mr, model_folder, tmp_path):
    store = tmp_path / "store"
    for _ in range(3):
        _publish(model_folder, store, mr.url)
    registry = Registry(open_store(str(store)))

    def promote(version):
        registry.transition("iris", version, "production", reason="test", actor="me")
        assert after_stage_change(registry, "iris", mr.url) is not None

    def mirrored():
        return {v: (e["state"], read_properties(e)["stage"]) for v, e in _versions(mr).items()}

    promote(1)
    promote(2)
    assert mirrored() == {"1": ("ARCHIVED", "archived"), "2": ("LIVE", "production"),
                          "3": ("LIVE", "staging")}
    registry.rollback("iris", reason="bad", actor="me")
    after_stage_change(registry, "iris", mr.url)
    assert mirrored() == {"1": ("LIVE", "production"), "2": ("ARCHIVED", "archived"),
                          "3": ("LIVE", "staging")}
    registry.transition("iris", 3, "archived", reason="never", actor="me")
    after_stage_change(registry, "iris", mr.url)
    assert mirrored()["3"] == ("ARCHIVED", "archived")
    (model,) = mr.entities["RegisteredModel"].values()
    assert read_properties(model)["production_version"] == "1"
    assert read_properties(model)["kfp_mlops_history_tip"] == registry.tip("iris")


def test_a_registry_that_is_down_leaves_the_store_publication_and_names_the_command(
    mr, model_folder, tmp_path, caplog
):
    store = tmp_path / "store"
    mr.outage = 503
    published = _publish(model_folder, store, mr.url)  # retried, then a warning: no raise

    assert published.version == 1
    assert Registry(open_store(str(store))).get("iris@1").stage == "staging"
    record = pending(LocalStore(store), "iris")
    assert record is not None and "kfp-mlops models sync iris" in record["command"]
    assert "kfp-mlops models sync iris" in caplog.text
    assert mr.entities["RegisteredModel"] == {}

    mr.heal()
    after_stage_change(Registry(open_store(str(store))), "iris", mr.url)
    assert read_properties(_versions(mr)["1"])["registration"] == "complete"
    assert pending(LocalStore(store), "iris") is None


def test_a_registration_cut_in_the_middle_is_marked_incomplete_then_finished(
    mr, model_folder, tmp_path
):
    store = tmp_path / "store"
    # find model, create model, list versions, create version: then the artifact fails.
    mr.fail_after(4, status=500)
    _publish(model_folder, store, mr.url)
    version = _versions(mr)["1"]
    assert read_properties(version)["registration"] == "incomplete"
    assert mr.entities["Artifact"] == {}
    assert pending(LocalStore(store), "iris") is not None

    mr.heal()
    client = ModelRegistryClient(mr.url)
    shown = read_model(client, "iris")
    assert [(v.version, v.registration) for v in shown["versions"]] == [("1", "incomplete")]
    sync_model(Registry(open_store(str(store))), "iris", client)
    assert read_properties(_versions(mr)["1"])["registration"] == "complete"
    assert len(mr.entities["Artifact"]) == 1


def test_a_second_store_cannot_take_over_a_registered_model(mr, model_folder, tmp_path):
    _publish(model_folder, tmp_path / "one", mr.url)
    registry = Registry(open_store(str(tmp_path / "two")))
    registry.publish("iris", model_folder, read_metadata(model_folder), blessed=True)
    with pytest.raises(ModelRegistryError, match="two stores publish the same model name"):
        sync_model(registry, "iris", ModelRegistryClient(mr.url))


def test_racing_stage_changes_leave_the_newest_state_in_the_model_registry(
    mr, model_folder, tmp_path
):
    """Writers promote and sync at once; the Model Registry ends at the store's final state."""
    store = tmp_path / "store"
    for _ in range(4):
        _publish(model_folder, store, mr.url)
    barrier = threading.Barrier(4)
    errors = []

    def writer(version):
        registry = Registry(open_store(str(store)))
        barrier.wait()
        for _ in range(3):
            try:
                registry.transition("iris", version, "production", reason="race", actor=str(version),
                                    force=True)
            except Exception as exc:  # a StageConflictError: another writer won this round
                errors.append(type(exc).__name__)
            after_stage_change(registry, "iris", mr.url)

    threads = [threading.Thread(target=writer, args=(v,)) for v in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(errors) <= {"StageConflictError", "RegistryError"}
    registry = Registry(open_store(str(store)))
    stages = {str(v.version): v.stage for v in registry.list_versions("iris")}
    assert {v: read_properties(e)["stage"] for v, e in _versions(mr).items()} == stages
    (model,) = mr.entities["RegisteredModel"].values()
    assert read_properties(model)["kfp_mlops_history_tip"] == registry.tip("iris")


def test_after_publish_without_a_registry_does_nothing(monkeypatch, model_folder, tmp_path):
    monkeypatch.delenv("KFP_MLOPS_MODEL_REGISTRY", raising=False)
    registry = Registry(open_store(str(tmp_path / "s")))
    published = registry.publish("iris", model_folder, read_metadata(model_folder), blessed=True)
    assert after_publish(registry, published, "") is None


def test_a_registered_model_someone_else_made_is_not_taken_over(mr, model_folder, tmp_path):
    ModelRegistryClient(mr.url).request("POST", "/registered_models", {"name": "iris"})
    store = tmp_path / "store"
    _publish(model_folder, store, mr.url)  # the store publication stands
    record = pending(LocalStore(store), "iris")
    assert record is not None and "was not registered by kfp-mlops" in record["error"]
    assert mr.entities["ModelVersion"] == {}


def test_a_server_that_is_not_a_model_registry_is_reported_not_raised(model_folder, tmp_path):
    import http.server
    import threading as th

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<html>login</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    th.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = tmp_path / "store"
        published = _publish(model_folder, store, f"http://127.0.0.1:{server.server_address[1]}")
        assert published.version == 1
        assert "not JSON" in pending(LocalStore(store), "iris")["error"]
    finally:
        server.shutdown()
        server.server_close()
