"""The S3 client reads KServe's storage-initializer variables, both spellings."""

import pytest

from kfp_mlops.storage import default_store_uri
from kfp_mlops.storage.s3 import _minio_client_from_env


@pytest.mark.parametrize(
    ("env", "host", "https"),
    [
        ({"AWS_ENDPOINT_URL": "http://minio-service.kubeflow:9000"}, "minio-service.kubeflow:9000", False),
        ({"AWS_ENDPOINT_URL": "https://s3.example.com"}, "s3.example.com", True),
        ({"S3_ENDPOINT": "seaweedfs.kubeflow:8333", "S3_USE_HTTPS": "0"}, "seaweedfs.kubeflow:8333", False),
        ({}, "s3.amazonaws.com", True),
    ],
)
def test_endpoint_variables(monkeypatch, env, host, https):
    for name in ("AWS_ENDPOINT_URL", "S3_ENDPOINT", "S3_USE_HTTPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = _minio_client_from_env()
    assert client._base_url.host == host
    assert client._base_url.is_https is https


def test_default_store(monkeypatch):
    monkeypatch.delenv("KFP_MLOPS_STORE", raising=False)
    assert default_store_uri() == "./mlops-store"
    monkeypatch.setenv("KFP_MLOPS_STORE", "s3://team/mlops")
    assert default_store_uri() == "s3://team/mlops"
