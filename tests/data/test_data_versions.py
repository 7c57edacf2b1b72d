import json

import pandas as pd
import pytest

from kfp_mlops.data.versions import (
    DatasetVersionNotFoundError,
    content_hash,
    download_dataset,
    get_dataset_version,
    list_dataset_versions,
    write_dataset_version,
)
from kfp_mlops.storage import StoreError


def test_same_content_same_version(store, wine):
    first, created = write_dataset_version(store, wine, "sklearn://wine")
    assert created and len(first.version_id) == 16
    files_before = store.list("datasets")
    # Same rows under another index, ingested again: nothing new is stored.
    again, created_again = write_dataset_version(store, wine.set_index(wine.index + 1000), "x")
    assert not created_again
    assert again == first
    assert store.list("datasets") == files_before


def test_changed_content_new_version_with_parent(store, wine):
    base, _ = write_dataset_version(store, wine, "sklearn://wine")
    derived, created = write_dataset_version(
        store, wine.iloc[:100], "filter", parent=base.version_id
    )
    assert created and derived.version_id != base.version_id
    assert derived.parent == base.version_id and derived.rows == 100
    assert [v.version_id for v in list_dataset_versions(store)][0] in {
        base.version_id, derived.version_id
    }
    assert {v.version_id for v in list_dataset_versions(store)} == {
        base.version_id, derived.version_id
    }


def test_hash_sees_types_and_order(wine):
    assert content_hash(wine) != content_hash(wine.astype({"proline": "float32"}))
    assert content_hash(wine) != content_hash(wine.iloc[::-1])
    assert content_hash(wine) != content_hash(wine[list(reversed(wine.columns))])


def test_metadata_and_download(store, wine, tmp_path):
    version, _ = write_dataset_version(store, wine, "sklearn://wine")
    meta = json.loads(store.get_bytes(f"datasets/{version.version_id}/metadata.json"))
    assert meta["rows"] == len(wine) and meta["columns"]["alcohol"] == "double"
    assert meta["created_at"].endswith("+00:00") and meta["source_uri"] == "sklearn://wine"
    path = download_dataset(store, version.version_id, tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), wine)


def test_corrupt_file_is_refused(store, wine, tmp_path):
    version, _ = write_dataset_version(store, wine, "w")
    store.put_bytes(f"datasets/{version.version_id}/data.parquet", b"tampered")
    with pytest.raises(StoreError, match="corrupt"):
        download_dataset(store, version.version_id, tmp_path / "d.parquet")
    assert not (tmp_path / "d.parquet").exists()


def test_unknown_version_says_how_to_list(store):
    with pytest.raises(DatasetVersionNotFoundError, match="kfp-mlops data list"):
        get_dataset_version(store, "0123456789abcdef")


def test_half_written_version_is_invisible(store, wine):
    version, _ = write_dataset_version(store, wine, "w")
    store.put_bytes("datasets/ffffffffffffffff/data.parquet", b"half")
    assert [v.version_id for v in list_dataset_versions(store)] == [version.version_id]
    with pytest.raises(DatasetVersionNotFoundError):
        get_dataset_version(store, "ffffffffffffffff")


def test_unknown_parent_is_refused(store, wine):
    with pytest.raises(DatasetVersionNotFoundError):
        write_dataset_version(store, wine, "w", parent="nope")
