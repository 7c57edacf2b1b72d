"""What a task needs on a cluster: its image, caching, resources and S3 credentials.

Credentials come from a Secret, never from parameters. Caching and resources come from
each component's policy (``kfp_mlops.components.policy``); :func:`finish_tasks` applies
them, and the image, to every task of the pipeline being defined, so no task is missed
when a pipeline gains one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from kfp_mlops.components.image import ImagePullWarning, default_image, pull_warning
from kfp_mlops.components.policy import HEAVY, policy_for
from kfp_mlops.store_uri import CLUSTER_STORE_TEMPLATE

# KFP's own object store secret (MinIO or SeaweedFS) and in-cluster endpoint.
DEFAULT_SECRET = "mlpipeline-minio-artifact"
DEFAULT_ENDPOINT = "http://minio-service.kubeflow:9000"
# The store pipelines default to on a cluster: the run's namespace's own prefix of KFP's
# bucket, the one a multi-user profile's key may write (kfp_mlops.store_uri resolves
# {namespace} in the task; standalone KFP's tasks run in "kubeflow").
DEFAULT_CLUSTER_STORE = CLUSTER_STORE_TEMPLATE

_MEMORY = re.compile(r"^([1-9][0-9]*)(Mi|Gi)$")


@dataclass(frozen=True)
class ClusterConfig:
    """Compile-time settings for tasks that read or write the store on a cluster."""

    s3_secret: str = DEFAULT_SECRET
    access_key_field: str = "accesskey"
    secret_key_field: str = "secretkey"
    s3_endpoint: str = DEFAULT_ENDPOINT
    s3_region: str = "us-east-1"
    # A Secret holding the model-signing key (docs/security.md) under ``key``; mapped to
    # KFP_MLOPS_SIGNING_KEY in the tasks that touch the store: publish signs, the tasks
    # that load a published model verify. None: no signing.
    signing_secret: str | None = None
    # Where a new InferenceService's KServe inference logger sends its CloudEvents (the
    # prediction log sink, docs/live-loop.md); KFP_MLOPS_LOG_URL in the tasks. Empty: none.
    log_url: str = ""
    # The cluster's KServe version (KFP_MLOPS_KSERVE_VERSION in the tasks): the deploy step
    # leaves out of a new InferenceService what that version's CRD lacks. Empty: the
    # oldest supported (0.15.0, Kubeflow 1.10), whose body every newer KServe accepts.
    kserve_version: str = ""


@dataclass(frozen=True)
class TaskSettings:
    """Compile-time choices for every task: the image, caching, the heavy tasks' memory.

    ``caching=False`` turns caching off for every task (``--no-caching``); ``True``
    keeps each component's policy: side-effect tasks never cache, whatever is asked.
    ``train_memory`` (``4Gi``, ``8192Mi``) is the memory request of ``train`` and
    ``run-trial``; their limit is twice that.
    """

    # $KFP_MLOPS_IMAGE when the settings are made, else the built-in name.
    image: str = field(default_factory=default_image)
    caching: bool = True
    train_memory: str | None = None

    def __post_init__(self) -> None:
        if not self.image.strip():
            raise ValueError("the image is empty; pass a registry path such as "
                             "ghcr.io/your-org/kfp-mlops:0.1.0")
        if self.train_memory is not None and not _MEMORY.match(self.train_memory):
            raise ValueError(
                f"train memory {self.train_memory!r} is not a Kubernetes quantity this "
                "option takes; write a whole number of Mi or Gi, e.g. 4Gi or 6144Mi"
            )


def _doubled(quantity: str) -> str:
    amount, unit = _MEMORY.match(quantity).groups()  # type: ignore[union-attr]
    return f"{int(amount) * 2}{unit}"


def finish_tasks(
    settings: TaskSettings | None = None, cluster: ClusterConfig | None = None
) -> None:
    """Set image, caching and resources on every task of the pipeline being defined.

    Call it last in a ``@dsl.pipeline`` function body. For a cluster, ``OMP_NUM_THREADS``
    is the task's CPU limit: OpenMP (scikit-learn's gradient boosting) otherwise starts a
    thread per core of the node, and in a pod limited to one or two CPUs those threads
    spin against the CFS quota (a test here took minutes instead of seconds on busy
    cores). Locally the tasks keep every core.
    """
    settings = settings or TaskSettings()
    from kfp.dsl import pipeline_context  # here: the CLI reads this module's defaults

    if cluster is not None and (problem := pull_warning(settings.image)):
        warnings.warn(problem, ImagePullWarning, stacklevel=2)

    pipeline = pipeline_context.Pipeline.get_default_pipeline()
    for task in pipeline.tasks.values():
        if task.component_spec.implementation.container is None:
            # A nested pipeline (a loop's DAG): its own body finished its tasks, and KFP
            # never caches a DAG, so the IR should not claim it may.
            task.set_caching_options(False)
            continue
        name = task.component_spec.name
        policy = policy_for(name)
        memory, memory_limit = policy.memory_request, policy.memory_limit
        if name in HEAVY and settings.train_memory:
            memory, memory_limit = settings.train_memory, _doubled(settings.train_memory)
        task.set_caching_options(policy.cache and settings.caching)
        task.set_container_image(settings.image)
        task.set_cpu_request(policy.cpu_request).set_cpu_limit(policy.cpu_limit)
        task.set_memory_request(memory).set_memory_limit(memory_limit)
        if cluster is not None:
            task.set_env_variable("OMP_NUM_THREADS", policy.cpu_limit)


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
    if cluster.log_url:
        task.set_env_variable("KFP_MLOPS_LOG_URL", cluster.log_url)
    if cluster.kserve_version:
        task.set_env_variable("KFP_MLOPS_KSERVE_VERSION", cluster.kserve_version)
    if cluster.signing_secret:
        kubernetes.use_secret_as_env(
            task, secret_name=cluster.signing_secret,
            secret_key_to_env={"key": "KFP_MLOPS_SIGNING_KEY"},
        )
    return task


def module_pipeline(attr: str, build: Callable, module_globals: dict) -> tuple[Callable, Callable]:
    """A module ``__getattr__`` and ``__dir__`` that offer ``attr``: the cluster form of a pipeline.

    ``kfp dsl compile --py FILE`` looks for one pipeline among the module's attributes.
    Built on first access, not at import: KFP's task setters call ``inspect.stack()``,
    which is slow while modules are still importing (over a minute here for the four).
    """

    def __getattr__(name: str):
        if name == attr:
            return build(ClusterConfig())
        raise AttributeError(f"module {module_globals['__name__']!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*module_globals, attr])

    return __getattr__, __dir__
