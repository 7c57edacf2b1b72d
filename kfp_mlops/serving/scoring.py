"""Batch scoring straight from the registry and any source the store can reach."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from kfp_mlops.data.shards import ShardPlan
from kfp_mlops.model.registry import Registry
from kfp_mlops.serving.batch import BatchResult, score_parquet
from kfp_mlops.serving.sharded import (
    PredictionsOutput,
    ScoringOptions,
    prepare_scorer,
    uncommit,
)
from kfp_mlops.storage import open_store


def score_from_registry(
    store_uri: str,
    model_ref: str,
    data: str,
    output_path: str | Path,
    *,
    with_probabilities: bool = False,
    keep_columns: Sequence[str] = (),
    ignore_unknown_columns: bool | None = None,
) -> BatchResult:
    """Download ``model_ref`` (sha256-checked) and stream ``data`` through it.

    Columns follow the input contract of :func:`kfp_mlops.serving.batch.score_parquet`.
    """
    registry = Registry(open_store(store_uri))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, _ = registry.download(model_ref, Path(tmp) / "model")
        source = Path(data)
        if data.startswith("s3://"):
            parsed = urlparse(data)
            source = Path(tmp) / Path(parsed.path).name
            open_store(f"s3://{parsed.netloc}").download_file(parsed.path.lstrip("/"), source)
        return score_parquet(
            model_dir, source, output_path, with_probabilities=with_probabilities,
            keep_columns=tuple(keep_columns), ignore_unknown_columns=ignore_unknown_columns,
        )


@contextmanager
def registry_model(store_uri: str, model_ref: str) -> Iterator[tuple[Path, str]]:
    """Download ``model_ref`` (sha256-checked) into a temporary folder: (folder, NAME@VERSION)."""
    registry = Registry(open_store(store_uri))
    version = registry.get(model_ref)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, _ = registry.download(version.ref, Path(tmp) / "model")
        yield model_dir, version.ref


def prepare_sharded(store_uri: str, model_ref: str, plan: ShardPlan, output: str,
                    options: ScoringOptions | None = None) -> str:
    """Before a fan-out: pin the model, check the plan's schema, uncommit the output.

    Returns ``NAME@VERSION``, so every shard task scores with the same version even if
    ``model_ref`` names a stage that moves meanwhile. Raises ``BatchInputError`` when
    the data does not fit the model, before any shard is scored.
    """
    from kfp_mlops.model.package import load_model_folder

    with registry_model(store_uri, model_ref) as (model_dir, pinned):
        model, metadata = load_model_folder(model_dir)
        prepare_scorer(model, metadata, plan, options or ScoringOptions())
    uncommit(PredictionsOutput(output))
    return pinned
