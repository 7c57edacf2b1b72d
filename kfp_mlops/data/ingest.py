"""Ingest: read a source, publish it as a dataset version, write the pipeline's Parquet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kfp_mlops.data.sources import BUNDLED, load_table
from kfp_mlops.data.versions import write_dataset_version
from kfp_mlops.storage import open_store

ROW_GROUP_ROWS = 100_000


@dataclass(frozen=True)
class IngestResult:
    """What was ingested: counts, content hash, and the dataset version in the store."""

    rows: int
    columns: int
    sha256: str
    source_uri: str
    dataset_version: str | None = None
    new_version: bool = False


def ingest_to_parquet(
    source: str, out_path: str | Path, store_uri: str | None = None
) -> IngestResult:
    """Load ``source`` and write it to ``out_path`` as Parquet.

    With ``store_uri`` it is also published as a dataset version. The Parquet file is
    written beside its target and renamed, so nobody reads half of it.
    """
    frame = load_table(source)
    frame.columns = [str(c) for c in frame.columns]
    uri = f"bundled:{source}" if source in BUNDLED else source
    version, created = (None, False)
    if store_uri:
        version, created = write_dataset_version(open_store(store_uri), frame, uri)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    # Row groups of 100k rows let later steps stream the file with bounded memory.
    frame.to_parquet(tmp, index=False, row_group_size=ROW_GROUP_ROWS)
    tmp.replace(out_path)
    digest = hashlib.sha256(out_path.read_bytes()).hexdigest()
    return IngestResult(
        rows=len(frame), columns=frame.shape[1], sha256=digest, source_uri=uri,
        dataset_version=version.version_id if version else None, new_version=created,
    )


def read_dataset(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a dataset artifact written by :func:`ingest_to_parquet` or a split."""
    return pd.read_parquet(path, columns=columns)


def dataset_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet dataset, without reading its rows."""
    import pyarrow.parquet as pq

    return pq.read_schema(path).names
