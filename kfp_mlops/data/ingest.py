"""Ingest: read a source and write it as one Parquet file (the pipeline's dataset)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kfp_mlops.data.sources import BUNDLED, load_table


@dataclass(frozen=True)
class IngestResult:
    """What was ingested: row and column counts and the content hash."""

    rows: int
    columns: int
    sha256: str
    source_uri: str


def ingest_to_parquet(source: str, out_path: str | Path) -> IngestResult:
    """Load ``source`` and write it to ``out_path`` as Parquet, written then renamed."""
    frame = load_table(source)
    frame.columns = [str(c) for c in frame.columns]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(out_path)
    digest = hashlib.sha256(out_path.read_bytes()).hexdigest()
    uri = f"bundled:{source}" if source in BUNDLED else source
    return IngestResult(rows=len(frame), columns=frame.shape[1], sha256=digest, source_uri=uri)


def read_dataset(path: str | Path) -> pd.DataFrame:
    """Read a dataset artifact written by :func:`ingest_to_parquet` or a split."""
    return pd.read_parquet(path)
