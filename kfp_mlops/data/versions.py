"""Immutable, content-addressed dataset versions in the store.

Layout: ``datasets/<version_id>/data.parquet`` and ``datasets/<version_id>/metadata.json``;
``metadata.json`` is the commit file, written last, so a folder without it is a
half-written version and stays invisible.

The version id is the first 16 hex characters of a *content hash*, not of the Parquet
bytes (those embed the writer's version and would change on a pyarrow upgrade). The
content hash (:mod:`kfp_mlops.data.content_hash`) is computed from the Arrow data batch
by batch while ingest streams it: column names and Arrow types in order, the row count
and every value. So the same table ingested twice gets the same id, whatever the batch
size, row groups or pandas version; reordering rows or columns, or changing a type,
gives a new one. (Versions before 0.2 hashed pandas' row hashes instead: the same data
ingested by 0.2 gets a new id once.)
``sha256`` in the metadata is of the stored ``data.parquet`` file and is checked on
download.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from kfp_mlops.data.content_hash import table_content_hash
from kfp_mlops.data.parquet import write_parquet
from kfp_mlops.data.stats import frame_to_table
from kfp_mlops.errors import DataError
from kfp_mlops.storage import AlreadyExistsError, NotFoundError, Store, StoreError

if TYPE_CHECKING:  # ingest streams Arrow batches and imports no pandas
    import pandas as pd

DATASETS_PREFIX = "datasets"
DATA_FILE = "data.parquet"
METADATA_FILE = "metadata.json"
ID_LENGTH = 16


class DatasetVersionNotFoundError(NotFoundError):
    """No committed dataset version has the requested id."""


@dataclass(frozen=True)
class DatasetVersion:
    """Metadata of one published dataset version."""

    version_id: str
    content_sha256: str  # content hash the id is cut from (see the module docstring)
    sha256: str  # of the stored data.parquet file
    rows: int
    columns: dict[str, str]  # column name -> Arrow type, in order
    source_uri: str
    created_at: str  # UTC, ISO 8601
    parent: str | None = None  # version this one was derived from
    # A sharded version (kfp_mlops.data.shard_stats) is kept in place, not copied: its
    # files, their row groups per shard and each shard's content hash.
    shards: list[dict[str, Any]] | None = None

    @property
    def prefix(self) -> str:
        """Store prefix of this version's folder."""
        return f"{DATASETS_PREFIX}/{self.version_id}"

    def to_json(self) -> str:
        """JSON text of the metadata file."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetVersion:
        """Rebuild from the metadata file's content."""
        return cls(**data)


def content_hash(table: pd.DataFrame | pa.Table) -> str:
    """Full sha256 hex of ``table``'s content (column names, types, rows in order)."""
    if not isinstance(table, pa.Table):
        table = frame_to_table(table)
    return table_content_hash(table)


def file_sha256(path: Path) -> str:
    """sha256 hex of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_dataset_version(
    store: Store, table: pd.DataFrame, source_uri: str, parent: str | None = None
) -> tuple[DatasetVersion, bool]:
    """Publish ``table`` as a dataset version; return it and whether it was new.

    Identical content maps to the existing version: nothing is stored and ``created`` is
    ``False`` (the first version's ``source_uri`` and ``created_at`` are kept).
    """
    arrow = frame_to_table(table)
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-dataset-") as tmp:
        data_path = Path(tmp) / DATA_FILE
        write_parquet(arrow, data_path)
        return publish_dataset_file(
            store, data_path, source_uri, content_sha256=table_content_hash(arrow),
            schema=arrow.schema, rows=len(table), parent=parent,
        )


def publish_dataset_file(
    store: Store,
    parquet_path: Path,
    source_uri: str,
    *,
    content_sha256: str,
    schema: pa.Schema,
    rows: int,
    parent: str | None = None,
    sha256: str | None = None,
) -> tuple[DatasetVersion, bool]:
    """Publish a Parquet file whose table has ``content_hash`` ``content_sha256``.

    For callers that wrote the file already (ingest writes its pipeline artifact once
    and publishes that same file); ``sha256`` is the file's hash if known.
    """
    version_id = content_sha256[:ID_LENGTH]
    try:
        existing = _read_version(store, version_id)
        if existing is not None:
            return existing, False
        if parent is not None:
            get_dataset_version(store, parent)  # fail early on a parent that does not exist
    except StoreError as exc:
        raise exc.with_detail(f"Nothing was published (dataset version {version_id}).") from exc
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-dataset-") as tmp:
        data_path = Path(tmp) / DATA_FILE
        shutil.copyfile(parquet_path, data_path)
        version = DatasetVersion(
            version_id=version_id,
            content_sha256=content_sha256,
            sha256=sha256 or file_sha256(data_path),
            rows=rows,
            columns={f.name: str(f.type) for f in schema},
            source_uri=source_uri,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            parent=parent,
        )
        (Path(tmp) / METADATA_FILE).write_text(version.to_json())
        try:
            store.publish_dir(version.prefix, tmp, commit_file=METADATA_FILE)
        except AlreadyExistsError:
            # Another writer published the same content first: same id, same data.
            try:
                winner = _read_version(store, version_id)
            except StoreError as exc:
                raise exc.with_detail(
                    f"Dataset version {version_id} was published by another writer at the "
                    "same time (the same content); reading it back failed."
                ) from exc
            if winner is None:
                raise
            return winner, False
    return version, True


def record_sharded_version(
    store: Store, *, source_uri: str, content_sha256: str, rows: int,
    columns: dict[str, str], shards: list[dict[str, Any]],
) -> tuple[DatasetVersion, bool]:
    """Record a sharded dataset (kept where it is) as a version; return it and if it is new.

    The id is cut from the content hash of the whole (every row group's content hash, in
    order), so the same files give the same id whatever the shard size.
    """
    version_id = content_sha256[:ID_LENGTH]
    existing = _read_version(store, version_id)
    if existing is not None:
        return existing, False
    version = DatasetVersion(
        version_id=version_id, content_sha256=content_sha256, sha256="", rows=rows,
        columns=columns, source_uri=source_uri,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), shards=shards,
    )
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-dataset-") as tmp:
        (Path(tmp) / METADATA_FILE).write_text(version.to_json())
        try:
            store.publish_dir(version.prefix, tmp, commit_file=METADATA_FILE)
        except AlreadyExistsError:
            return _read_version(store, version_id) or version, False
    return version, True


def _read_version(store: Store, version_id: str) -> DatasetVersion | None:
    """The committed version ``version_id``; None when its commit file does not exist."""
    key = f"{DATASETS_PREFIX}/{version_id}/{METADATA_FILE}"
    try:
        raw = store.get_bytes(key)
    except NotFoundError:
        return None
    return DatasetVersion.from_dict(json.loads(raw))


def list_dataset_versions(store: Store) -> list[DatasetVersion]:
    """Every committed dataset version, newest first."""
    versions = [
        v for v in (_read_version(store, name) for name in store.children(DATASETS_PREFIX)) if v
    ]
    return sorted(versions, key=lambda v: (v.created_at, v.version_id), reverse=True)


def get_dataset_version(store: Store, version_id: str) -> DatasetVersion:
    """Return the committed version ``version_id``; a clear error if there is none."""
    version = _read_version(store, version_id) if "/" not in version_id else None
    if version is None:
        raise DatasetVersionNotFoundError(
            f"dataset version {version_id!r} is not in the store {store.uri}; "
            "run `kfp-mlops data list` to see the valid version ids"
        )
    return version


def download_dataset(store: Store, version_id: str, path: str | Path) -> Path:
    """Copy a version's Parquet file to ``path`` (a file, or a folder to put it in).

    The file's sha256 is checked against the metadata; a mismatch raises
    :class:`StoreError` and removes the partial copy.
    """
    version = get_dataset_version(store, version_id)
    if version.shards is not None:
        raise DataError(
            f"dataset version {version_id} is sharded ({len(version.shards)} shards kept in "
            f"place at {version.source_uri}); read its files there, or monitor it with "
            f"`kfp-mlops monitor --data {version.source_uri}`"
        )
    target = Path(path)
    if target.is_dir():
        target = target / DATA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    store.download_file(f"{version.prefix}/{DATA_FILE}", target)
    actual = file_sha256(target)
    if actual != version.sha256:
        target.unlink(missing_ok=True)
        raise StoreError(
            f"{store.uri_for(version.prefix + '/' + DATA_FILE)} has sha256 {actual}, but its "
            f"metadata says {version.sha256}; the stored file is corrupt: re-ingest the source "
            f"{version.source_uri}"
        )
    return target
