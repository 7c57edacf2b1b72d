"""What a task needs on a cluster: S3 credentials from a Secret, never from parameters."""

from __future__ import annotations

from dataclasses import dataclass

# KFP's own object store secret (MinIO or SeaweedFS) and in-cluster endpoint.
DEFAULT_SECRET = "mlpipeline-minio-artifact"
DEFAULT_ENDPOINT = "http://minio-service.kubeflow:9000"


@dataclass(frozen=True)
class ClusterConfig:
    """Compile-time settings for tasks that read or write the store on a cluster."""

    s3_secret: str = DEFAULT_SECRET
    access_key_field: str = "accesskey"
    secret_key_field: str = "secretkey"
    s3_endpoint: str = DEFAULT_ENDPOINT
    s3_region: str = "us-east-1"


def on_cluster(task, cluster: ClusterConfig | None):
    """Map the store Secret to KServe's S3 variables on ``task`` (no-op for local runs)."""
    if cluster is None:
        return task
    from kfp import kubernetes

    kubernetes.use_secret_as_env(
        task,
        secret_name=cluster.s3_secret,
        secret_key_to_env={
            cluster.access_key_field: "AWS_ACCESS_KEY_ID",
            cluster.secret_key_field: "AWS_SECRET_ACCESS_KEY",
        },
    )
    task.set_env_variable("AWS_ENDPOINT_URL", cluster.s3_endpoint)
    task.set_env_variable("AWS_DEFAULT_REGION", cluster.s3_region)
    return task
