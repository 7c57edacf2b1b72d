"""Publish a trained model folder to the registry in the store."""

from __future__ import annotations

from pathlib import Path

from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.registry import ModelVersion, Registry
from kfp_mlops.model.steps import model_name_for
from kfp_mlops.storage import open_store


def publish_model(
    model_dir: str | Path,
    metrics: dict[str, float],
    store_uri: str,
    model_name: str | None,
    source: str,
    stage: str = "none",
    reason: str = "",
    run_id: str = "",
) -> ModelVersion:
    """Record ``metrics`` and ``run_id`` in the metadata and publish a new version."""
    metadata = read_metadata(model_dir)
    metadata.metrics = {k: float(v) for k, v in metrics.items()}
    metadata.run_id = run_id or None
    registry = Registry(open_store(store_uri))
    name = model_name or model_name_for(source)
    # Only models that passed the pipeline's gates reach this step: they are blessed.
    return registry.publish(
        name, Path(model_dir), metadata, stage=stage, reason=reason,
        actor=run_id or "kfp-mlops", blessed=True,
    )
