"""The store on both backends: a local folder, and S3 over HTTP (moto's server on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfp_mlops.storage import (
    AlreadyExistsError,
    LocalStore,
    S3Store,
    Store,
    StoreError,
    open_store,
)
from tests.s3server import s3_server


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store(request, tmp_path) -> Iterator[Store]:
    if request.param == "local":
        yield open_store(str(tmp_path / "store"))
        return
    with s3_server() as server:
        yield open_store(server.uri("some/prefix"))


@pytest.fixture
def folder(tmp_path) -> Path:
    """A folder to publish: two data files, one nested, and a commit file."""
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "model.joblib").write_bytes(b"model bytes")
    (root / "sub" / "part.txt").write_text("nested")
    (root / "metadata.json").write_text('{"version": 1}')
    return root


def test_bytes_round_trip_exists_delete(store):
    store.put_bytes("a/b/c.bin", b"\x00\x01payload")
    assert store.get_bytes("a/b/c.bin") == b"\x00\x01payload"
    assert store.exists("a/b/c.bin") and not store.exists("a/b/missing")
    store.put_bytes("a/b/c.bin", b"replaced")
    assert store.get_bytes("a/b/c.bin") == b"replaced"
    store.delete("a/b/c.bin")
    store.delete("a/b/c.bin")  # deleting twice is fine
    assert not store.exists("a/b/c.bin")
    with pytest.raises(StoreError, match=r"a/b/c\.bin does not exist"):
        store.get_bytes("a/b/c.bin")


def test_list_and_children(store):
    for key in ("d/2.txt", "d/1.txt", "d/x/3.txt", "e.txt", "dd/4.txt"):
        store.put_bytes(key, key.encode())
    assert store.list("d/") == ["d/1.txt", "d/2.txt", "d/x/3.txt"]
    assert store.list() == ["d/1.txt", "d/2.txt", "d/x/3.txt", "dd/4.txt", "e.txt"]
    assert store.list("nothing/") == []
    assert store.children("d") == ["1.txt", "2.txt", "x"]


def test_files_and_dirs_round_trip(store, folder, tmp_path):
    store.upload_file("f/model.joblib", folder / "model.joblib")
    store.download_file("f/model.joblib", tmp_path / "copy.joblib")
    assert (tmp_path / "copy.joblib").read_bytes() == b"model bytes"
    with pytest.raises(StoreError, match="does not exist"):
        store.download_file("f/missing", tmp_path / "missing")

    store.publish_dir("pub/1", folder, "metadata.json")
    out = store.download_dir("pub/1", tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "metadata.json", "model.joblib", "sub/part.txt"
    ]
    assert (out / "sub" / "part.txt").read_text() == "nested"
    assert store.uri_for("pub/1").endswith("/pub/1")


def test_publish_refuses_a_second_publication(store, folder, tmp_path):
    store.publish_dir("pub/1", folder, "metadata.json")
    other = tmp_path / "other"
    other.mkdir()
    (other / "metadata.json").write_text('{"version": 2}')
    with pytest.raises(AlreadyExistsError, match="already published"):
        store.publish_dir("pub/1", other, "metadata.json")
    assert store.get_bytes("pub/1/metadata.json") == b'{"version": 1}'
    assert store.list("pub/") == ["pub/1/metadata.json", "pub/1/model.joblib", "pub/1/sub/part.txt"]


def test_local_publish_is_atomic(tmp_path, folder):
    """A publication that fails half-way leaves neither the folder nor a staging copy."""
    store = LocalStore(tmp_path / "store")
    (folder / "metadata.json").unlink()  # the commit file is missing: the copy fails last
    with pytest.raises((StoreError, OSError)):
        store.publish_dir("pub/1", folder, "metadata.json")
    assert store.list() == []
    assert not (tmp_path / "store" / "pub" / "1").exists()
    assert [p.name for p in (tmp_path / "store" / "pub").iterdir()] == []


@pytest.mark.slow
def test_s3_publish_needs_its_commit_file_and_writes_nothing_without_it(folder):
    with s3_server() as server:
        store = open_store(server.uri())
        (folder / "metadata.json").unlink()
        with pytest.raises(StoreError, match="has no metadata.json to publish last"):
            store.publish_dir("pub/1", folder, "metadata.json")
        assert store.list() == []


@pytest.mark.slow
def test_s3_prefix_keeps_keys_apart():
    with s3_server() as server:
        team_a, team_b = open_store(server.uri("a")), open_store(server.uri("b"))
        team_a.put_bytes("k.txt", b"a")
        team_b.put_bytes("k.txt", b"b")
        assert team_a.list() == ["k.txt"] and team_a.get_bytes("k.txt") == b"a"
        assert team_a.uri_for("k.txt") == f"s3://{server.bucket}/a/k.txt"
        whole = open_store(server.uri())
        assert whole.list() == ["a/k.txt", "b/k.txt"]


@pytest.mark.slow
def test_missing_bucket_is_a_clear_error():
    with s3_server() as server:
        store = open_store(f"s3://no-such-bucket-{server.bucket}/x")
        with pytest.raises(StoreError, match=r"bucket 'no-such-bucket-.*' does not exist.*create"):
            store.put_bytes("k", b"v")
        with pytest.raises(StoreError, match="does not exist"):
            store.get_bytes("k")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # minio retries the connection for about 6 s
def test_unreachable_endpoint_is_a_clear_error(monkeypatch):
    """Nothing listens on the port: the error names the endpoint and the variables."""
    port = free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = open_store("s3://models/x")
    assert isinstance(store, S3Store)
    with pytest.raises(StoreError) as caught:
        store.get_bytes("k")
    message = str(caught.value)
    assert f"cannot reach the S3 store s3://models/x at http://127.0.0.1:{port}" in message
    assert "AWS_ENDPOINT_URL" in message


def test_open_store_uris(tmp_path):
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert open_store(f"file://{tmp_path}").uri == str(tmp_path.resolve())
    with pytest.raises(StoreError, match="unsupported store URI 'gs://b'"):
        open_store("gs://b")
    with pytest.raises(StoreError, match="escapes the store root"):
        LocalStore(tmp_path).put_bytes("../outside", b"x")
