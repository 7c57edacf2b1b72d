"""How a Kubeflow cluster runs each component: caching, CPU and memory.

KFP caches a task when its component, inputs and parameters match an earlier run, and
then skips it. That is right for a pure function of its input artifacts and wrong for
a task that reads outside state by name (a URI whose object changes, the stored schema,
the production model) or changes it (the registry, the InferenceService): a nightly
schedule with the same ``data=s3://...`` argument would be served yesterday's result.
So caching is off for those, on for the rest; every component must have an entry here
(a test fails otherwise, and another reads the compiled IR).

Requests and limits come from the peak RSS of each task measured by
``bench/bench_task_memory.py`` (1M generated rows, 12 columns, a 176 MiB CSV; figures in
docs/cluster.md) with headroom: the request is at least what the task needed there, the
limit twice the request. The memory of ``train`` and ``run-trial`` grows with rows times
one-hot columns and is settable at compile time (``kfp-mlops compile --train-memory 8Gi``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskPolicy:
    """Caching and Kubernetes resources of one component's tasks."""

    cache: bool
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    why: str


def _pure(cpu: str, memory: str, limit: str, why: str, cpu_limit: str = "1") -> TaskPolicy:
    return TaskPolicy(True, cpu, cpu_limit, memory, limit, why)


def _side_effect(cpu: str, memory: str, limit: str, why: str, cpu_limit: str = "1") -> TaskPolicy:
    return TaskPolicy(False, cpu, cpu_limit, memory, limit, why)


POLICIES: dict[str, TaskPolicy] = {
    # Data life cycle
    "ingest": _side_effect("500m", "1Gi", "2Gi", "reads the source URI, whose object may change"),
    "check-data": _pure("250m", "512Mi", "1Gi", "reads only the dataset artifact"),
    "compute-statistics": _pure("500m", "512Mi", "1Gi", "reads only the dataset artifact"),
    "validate-data": _side_effect(
        "250m", "256Mi", "512Mi", "reads the stored schema and may store a new version"),
    # Sharded data: a shard's memory is bounded by its row hashes (8 bytes a row) and one
    # record batch, not by the dataset (bench/bench_sharded.py).
    "plan-shards": _side_effect(
        "250m", "256Mi", "512Mi", "lists the source prefix, whose files may change"),
    "scan-shard": _side_effect(
        "1", "1Gi", "2Gi", "reads the source files the plan names, which may change, and "
        "writes its partial to the run's fan-in prefix of the store"),
    "scan-shards": _side_effect(
        "1", "2Gi", "4Gi", "reads the source files the plan names (local process pool)", "2"),
    "merge-scans": _side_effect(
        "500m", "1Gi", "2Gi", "reads the shards' partials from the run's fan-in prefix "
        "of the store, then deletes them"),
    "split-data": _pure("500m", "1Gi", "2Gi", "seeded: the same rows and seed give the same split"),
    # Model life cycle
    "make-candidates": _pure("100m", "256Mi", "512Mi", "a pure function of its parameters"),
    "fixed-params": _pure("100m", "256Mi", "512Mi", "a pure function of its parameters"),
    "run-trial": _side_effect("1", "2Gi", "4Gi", "writes its result to the run's fan-in "
                              "prefix of the store, which select-best reads", "2"),
    "run-trials": _pure("1", "2Gi", "4Gi", "seeded cross-validation of every candidate in one "
                        "process pool (local runs)", "2"),
    "select-best": _side_effect("100m", "256Mi", "512Mi", "on a cluster reads the trial "
                                "results from the run's fan-in prefix of the store"),
    "train": _pure("1", "2Gi", "4Gi", "seeded: the same rows and parameters give the same model",
                   "2"),
    "evaluate": _pure("500m", "1Gi", "2Gi", "scores the model on the held-out rows"),
    "bless-model": _side_effect(
        "500m", "1Gi", "2Gi", "scores the production model, which changes between runs"),
    "publish": _side_effect("250m", "256Mi", "512Mi", "adds a version to the registry"),
    "model-card": _pure("100m", "256Mi", "512Mi", "draws from the evaluation artifact"),
    "skip-step": _pure("100m", "128Mi", "256Mi", "records a skip reason"),
    # Inferencing
    "infra-validate": _side_effect(
        "500m", "512Mi", "1Gi", "a gate: the real server is started again for every candidate"),
    "deploy": _side_effect("100m", "256Mi", "512Mi", "changes the InferenceService and registry"),
    "batch-predict": _side_effect(
        "1", "1Gi", "2Gi", "reads the input URI and the registry stage, which change", "2"),
    "prepare-scoring": _side_effect(
        "250m", "512Mi", "1Gi", "pins the registry stage and uncommits the output prefix"),
    "score-shard": _side_effect(
        "1", "1Gi", "2Gi", "writes a part of the output prefix (a retry replaces it)", "2"),
    "score-shards": _side_effect(
        "1", "2Gi", "4Gi", "writes the output prefix from a process pool (local runs)", "2"),
    "collect-predictions": _side_effect(
        "250m", "256Mi", "512Mi", "commits the output prefix (_SUCCESS)"),
    # Observability
    "detect-drift": _side_effect(
        "500m", "2Gi", "4Gi", "reads the production model and its dataset, which change"),
    "detect-drift-sharded": _side_effect(
        "500m", "1Gi", "2Gi", "reads the production model and its dataset, which change"),
    "monitor": _side_effect(
        "500m", "2Gi", "4Gi", "scores the production version and pushes the drift gauges"),
}

HEAVY = ("train", "run-trial", "run-trials")
"""Components whose memory ``--train-memory`` sets (request; the limit is twice that)."""


def policy_for(component_name: str) -> TaskPolicy:
    """The policy of a component (by its KFP name, e.g. ``bless-model``)."""
    try:
        return POLICIES[component_name]
    except KeyError:
        raise KeyError(
            f"component {component_name!r} has no caching and resource policy; add it to "
            "kfp_mlops.components.policy.POLICIES"
        ) from None
