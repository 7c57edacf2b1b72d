"""Fan-in through the store (kfp_mlops.fanin): what the cluster form's loops rely on.

Each loop iteration writes under ``fan-in/<run id>/<step>/`` and the gathering task reads
the items it expects, in its own order, and names any that are missing.
"""

import pytest

from kfp_mlops.fanin import (
    FanInError,
    drop_folders,
    fanin_prefix,
    fetch_folders,
    gather_texts,
    item_name,
    put_folder,
    put_text,
)


def test_texts_come_back_in_the_order_asked_whatever_the_write_order(tmp_path):
    store = str(tmp_path / "store")
    candidates = ['{"C": 1.0}', '{"C": 0.01}', '{"C": 0.0001}']
    for c in reversed(candidates):
        put_text(store, "run-1", "run-trial", item_name(c), f"result of {c}")
    got = gather_texts(store, "run-1", "run-trial", [item_name(c) for c in candidates])
    assert got == [f"result of {c}" for c in candidates]
    # Another run's prefix is apart.
    with pytest.raises(FanInError, match="lacks 3 of the 3 results"):
        gather_texts(store, "run-2", "run-trial", [item_name(c) for c in candidates])


def test_a_missing_item_is_named(tmp_path):
    store = str(tmp_path / "store")
    put_text(store, "r", "run-trial", "a", "1")
    with pytest.raises(FanInError, match=r"lacks 1 of the 2 results .*\(b;.*rerun"):
        gather_texts(store, "r", "run-trial", ["a", "b"])


def test_a_folder_counts_only_once_its_marker_is_written(tmp_path):
    store = str(tmp_path / "store")
    partial = tmp_path / "partial"
    (partial / "sub").mkdir(parents=True)
    (partial / "stats.json").write_text("{}")
    (partial / "sub" / "rows.bin").write_bytes(b"\x00\x01")
    put_folder(store, "r", "scan-shard", "shard-00000", partial)
    # A pod killed mid-upload: files but no marker.
    (tmp_path / "store" / fanin_prefix("r", "scan-shard") / "shard-00001").mkdir()
    (tmp_path / "store" / fanin_prefix("r", "scan-shard") / "shard-00001" / "x").write_text("")
    with pytest.raises(FanInError, match="shard-00001"):
        fetch_folders(store, "r", "scan-shard", ["shard-00000", "shard-00001"], tmp_path / "a")
    (folder,) = fetch_folders(store, "r", "scan-shard", ["shard-00000"], tmp_path / "b")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) \
        == ["stats.json", "sub/rows.bin"]
    assert drop_folders(store, "r", "scan-shard", ["shard-00000"]) == 2
    left = [p.name for p in (tmp_path / "store" / "fan-in").rglob("*") if p.is_file()]
    assert left == ["x"]  # the unmarked folder is not this call's


@pytest.mark.parametrize("run_id", ["", "a/b", "{{$.pipeline_job_uuid}}"])
def test_a_run_id_that_is_not_a_plain_name_is_refused(tmp_path, run_id):
    with pytest.raises(ValueError, match="PIPELINE_JOB_ID_PLACEHOLDER"):
        put_text(str(tmp_path), run_id, "run-trial", "a", "1")


def test_over_s3_nothing_is_listed(s3, tmp_path):
    """On a real S3 server, and no listing request ever sent: a profile's key may not list.

    The minio client's listing is patched (autospec) at the network boundary to fail.
    """
    from unittest import mock

    from minio import Minio

    store = s3.uri("private/team-a/kfp-mlops")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "stats.json").write_text("{}")
    with mock.patch.object(Minio, "list_objects", autospec=True,
                           side_effect=AssertionError("a fan-in call listed the bucket")):
        put_text(store, "uuid-1", "run-trial", item_name("{}"), "result")
        assert gather_texts(store, "uuid-1", "run-trial", [item_name("{}")]) == ["result"]
        put_folder(store, "uuid-1", "scan-shard", "shard-00000", partial)
        (folder,) = fetch_folders(store, "uuid-1", "scan-shard", ["shard-00000"],
                                  tmp_path / "got")
        assert (folder / "stats.json").read_text() == "{}"
        assert drop_folders(store, "uuid-1", "scan-shard", ["shard-00000"]) == 1
        with pytest.raises(FanInError, match="shard-00000"):
            fetch_folders(store, "uuid-1", "scan-shard", ["shard-00000"], tmp_path / "again")
