"""Publish a trained, blessed model folder to the registry in the store."""

from __future__ import annotations

import json
from pathlib import Path

from kfp_mlops.model.blessing import Blessing, Comparison
from kfp_mlops.model.package import (
    find_model_file,
    in_reading_order,
    read_metadata,
    sign_model,
    signing_key,
)
from kfp_mlops.model.registry import ModelVersion, Registry
from kfp_mlops.storage import open_store


def blessing_from_json(text: str) -> Blessing | None:
    """Rebuild the blessing verdict a pipeline passed along as JSON (``""``: none)."""
    if not text or text == "{}":
        return None
    raw = json.loads(text)
    fields = set(Comparison.__dataclass_fields__)
    rows = [Comparison(**{k: v for k, v in c.items() if k in fields}) for c in raw["comparisons"]]
    return Blessing(blessed=bool(raw["blessed"]), reason=raw["reason"], comparisons=rows)


def publish_model(
    model_dir: str | Path,
    metrics: dict[str, float],
    store_uri: str,
    name: str,
    *,
    stage: str = "none",
    reason: str = "",
    run_id: str = "",
    dataset_version: str | None = None,
    blessing_json: str = "",
    model_registry: str | None = None,
    blessing_policy: str = "",
    run_uid: str = "",
    pipeline_version: str = "",
    estimator: dict | None = None,
) -> ModelVersion:
    """Record metrics, lineage and the blessing, then publish a new immutable version.

    With no ``blessing_json`` the version is recorded as not blessed: it can reach
    production only with ``models promote --force``. With a signing key configured, the
    model file's signature from training is checked (or, for a model trained without
    the key, made here) before anything is written. ``estimator`` (the evaluate step's
    ``Evaluation.estimator``) is stored in the metadata: monitoring estimates the
    version's performance on unlabelled batches with it.

    With a Kubeflow Model Registry configured (``model_registry``, else
    ``$KFP_MLOPS_MODEL_REGISTRY``) the version is then registered there too
    (``kfp_mlops.model.kubeflow_registry``); if that fails, the store publication stands
    and a warning names the ``kfp-mlops models sync`` command that finishes it.
    """
    metadata = read_metadata(model_dir)
    sign_model(metadata, find_model_file(model_dir), signing_key())
    metadata.metrics = {k: float(v) for k, v in in_reading_order(metrics).items()}
    metadata.run_id = run_id or None
    metadata.dataset_version = dataset_version or metadata.dataset_version
    if estimator is not None:
        metadata.performance_estimator = estimator
    blessing = blessing_from_json(blessing_json)
    registry = Registry(open_store(store_uri))
    published = registry.publish(
        name, Path(model_dir), metadata, stage=stage, reason=reason,
        actor=run_id or "kfp-mlops", blessing=blessing, blessed=False,
    )
    from kfp_mlops.model.kubeflow_registry import after_publish

    after_publish(registry, published, model_registry, run_id=run_id, run_uid=run_uid,
                  blessing_policy=blessing_policy, pipeline_version=pipeline_version)
    return published
