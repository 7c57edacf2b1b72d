"""``{namespace}`` in a store URI: filled in from the pod at run time (kfp_mlops.store_uri)."""

from __future__ import annotations

import pytest

from kfp_mlops.storage import S3Store, open_store
from kfp_mlops.store_uri import (
    CLUSTER_STORE_TEMPLATE,
    NAMESPACE_ENV,
    StoreUriError,
    current_namespace,
    resolve_store_uri,
)


def test_the_cluster_default_is_the_namespaces_private_prefix_of_kfps_bucket(tmp_path):
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("kubeflow-user-example-com\n")
    assert resolve_store_uri(CLUSTER_STORE_TEMPLATE, env={}, namespace_file=namespace_file) == (
        "s3://mlpipeline/private/kubeflow-user-example-com/kfp-mlops")


def test_the_environment_wins_over_the_pods_namespace_file(tmp_path):
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("kubeflow")
    env = {NAMESPACE_ENV: "team-a"}
    assert current_namespace(env, namespace_file) == "team-a"
    assert current_namespace({}, namespace_file) == "kubeflow"
    assert current_namespace({}, tmp_path / "absent") is None


def test_uris_without_the_placeholder_are_unchanged():
    for uri in ("s3://bucket/prefix", "./mlops-store", "file:///tmp/x"):
        assert resolve_store_uri(uri, env={}) == uri


def test_outside_a_pod_the_error_says_what_to_set(tmp_path):
    with pytest.raises(StoreUriError, match=NAMESPACE_ENV) as info:
        resolve_store_uri(CLUSTER_STORE_TEMPLATE, env={}, namespace_file=tmp_path / "none")
    assert "./mlops-store" in str(info.value)


def test_a_namespace_that_is_no_kubernetes_name_is_refused():
    with pytest.raises(StoreUriError, match="not a Kubernetes namespace"):
        resolve_store_uri(CLUSTER_STORE_TEMPLATE, env={NAMESPACE_ENV: "../other"})


def test_open_store_resolves_the_template(monkeypatch):
    monkeypatch.setenv(NAMESPACE_ENV, "team-b")
    store = open_store(CLUSTER_STORE_TEMPLATE)
    assert isinstance(store, S3Store)
    assert store.uri == "s3://mlpipeline/private/team-b/kfp-mlops"
    assert store.uri_for("models/m/1") == "s3://mlpipeline/private/team-b/kfp-mlops/models/m/1"


def test_the_pipelines_default_store_is_the_template():
    from kfp_mlops.pipelines.cluster import DEFAULT_CLUSTER_STORE

    assert DEFAULT_CLUSTER_STORE == CLUSTER_STORE_TEMPLATE


def test_sharded_predictions_default_output_resolves_the_namespace(monkeypatch):
    from kfp_mlops.serving.sharded import PredictionsOutput, default_output

    monkeypatch.setenv(NAMESPACE_ENV, "team-c")
    output = PredictionsOutput(default_output(CLUSTER_STORE_TEMPLATE, "run-1"))
    assert output.uri == "s3://mlpipeline/private/team-c/kfp-mlops/predictions/run-1"
    assert output.prefix == "private/team-c/kfp-mlops/predictions/run-1"
