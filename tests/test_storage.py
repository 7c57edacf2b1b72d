"""The store on both backends: a local folder, and S3 over HTTP (moto's server on loopback)."""

from __future__ import annotations

import errno
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfp_mlops.storage import (
    AlreadyExistsError,
    BucketNotFoundError,
    ConflictError,
    LocalStore,
    NotFoundError,
    S3Store,
    Store,
    StoreError,
    UnreachableError,
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
    with pytest.raises(NotFoundError, match=r"a/b/c\.bin does not exist"):
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
    with pytest.raises(NotFoundError, match="does not exist"):
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


def test_list_folded_names_each_publication_by_its_commit_file(store, folder, tmp_path):
    store.publish_dir("m/a/1", folder, "metadata.json")
    store.publish_dir("m/a/2", folder, "metadata.json")
    store.put_bytes("m/a/history/r1.json", b"{}")
    store.put_bytes("m/b/notes.txt", b"x")
    if isinstance(store, S3Store):  # a publication in progress: files, no commit file yet
        store.upload_file("m/a/3/model.joblib", folder / "model.joblib")
    else:  # a local publication is staged under a hidden name
        (tmp_path / "store" / "m" / "a" / ".tmp-3").mkdir()

    def is_version(path: str) -> bool:
        return path.count("/") == 1 and path.rsplit("/", 1)[1].isdigit()

    assert store.list_folded("m/", "metadata.json", is_version) == [
        "m/a/1/metadata.json", "m/a/2/metadata.json", "m/a/history/r1.json", "m/b/notes.txt",
    ]
    assert store.list_folded("m/a", "metadata.json", str.isdigit) == [
        "m/a/1/metadata.json", "m/a/2/metadata.json", "m/a/history/r1.json",
    ]
    assert store.list_folded("nothing/", "metadata.json", str.isdigit) == []
    # list() is unchanged: every file of a published folder.
    assert "m/a/1/sub/part.txt" in store.list("m/")


def test_local_publish_is_atomic(tmp_path, folder, monkeypatch):
    """A publication that fails half-way leaves neither the folder nor a staging copy."""
    store = LocalStore(tmp_path / "store")
    (folder / "metadata.json").unlink()  # no commit file: refused before anything is written
    with pytest.raises(StoreError, match="has no metadata.json to publish last"):
        store.publish_dir("pub/1", folder, "metadata.json")
    assert store.list() == []
    assert not (tmp_path / "store" / "pub" / "1").exists()

    (folder / "metadata.json").write_text("{}")
    import kfp_mlops.storage.local as storage

    copies = []

    def failing_copy(src, dst):  # the disk fills up on the second file
        copies.append(src)
        if len(copies) == 2:
            raise OSError(28, "No space left on device")
        return shutil.copyfile(src, dst)

    monkeypatch.setattr(storage.shutil, "copyfile", failing_copy)
    with pytest.raises(StoreError, match="No space left.*Nothing was published under"):
        store.publish_dir("pub/1", folder, "metadata.json")
    assert store.list() == []
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
        with pytest.raises(BucketNotFoundError, match=r"bucket 'no-such-bucket-.*' does not exist.*create"):
            store.put_bytes("k", b"v")
        with pytest.raises(BucketNotFoundError, match="does not exist"):
            store.get_bytes("k")
        # Never "the key is missing": a missing bucket is not a missing schema.
        with pytest.raises(BucketNotFoundError):
            store.exists("k")
        with pytest.raises(BucketNotFoundError):
            store.ensure_ready()


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
    with pytest.raises(UnreachableError) as caught:
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


def test_create_if_absent_creates_once(store):
    assert store.create_if_absent("c/1", b"first")
    assert not store.create_if_absent("c/1", b"second")
    assert not store.create_if_absent("c/1", b"first")  # same bytes, another call: not ours
    assert store.get_bytes("c/1") == b"first"
    assert store.list("c/") == ["c/1"]


def test_create_if_absent_has_one_winner_among_racers(store):
    barrier = threading.Barrier(12)
    won: list[int] = []

    def racer(i: int) -> None:
        barrier.wait()
        if store.create_if_absent("race/key", f"writer {i}".encode()):
            won.append(i)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert store.get_bytes("race/key") == f"writer {won[0]}".encode()


def test_publish_dir_has_one_winner_among_racers(store, tmp_path):
    """Racing publishers of one prefix: one publishes, the others get AlreadyExistsError."""
    folders = []
    for i in range(8):
        src = tmp_path / f"src{i}"
        src.mkdir()
        (src / "commit.txt").write_text(f"publisher {i}")
        folders.append(src)
    barrier = threading.Barrier(len(folders))
    outcome: dict[int, str] = {}

    def publisher(i: int) -> None:
        barrier.wait()
        try:
            store.publish_dir("pub/1", folders[i], "commit.txt")
            outcome[i] = "published"
        except AlreadyExistsError:
            outcome[i] = "refused"

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(len(folders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcome.items() if o == "published"]
    assert len(winners) == 1 and len(outcome) == len(folders)
    assert store.get_bytes("pub/1/commit.txt") == f"publisher {winners[0]}".encode()


def test_ensure_ready_writes_and_removes_a_probe(store):
    store.ensure_ready()
    assert store.list() == []


def test_errors_share_one_base_and_conflict_covers_already_exists():
    assert issubclass(AlreadyExistsError, ConflictError)
    for cls in (NotFoundError, BucketNotFoundError, UnreachableError, ConflictError):
        assert issubclass(cls, StoreError)


def test_read_only_local_store_is_permission_denied(tmp_path, monkeypatch):
    """EROFS (a read-only mount) on every write path is PermissionDeniedError."""
    import kfp_mlops.storage.local as storage
    from kfp_mlops.storage import PermissionDeniedError

    store = LocalStore(tmp_path / "store")
    store.put_bytes("kept", b"1")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(storage.os, "replace", read_only)
    monkeypatch.setattr(storage.os, "link", read_only)
    monkeypatch.setattr(storage.os, "rename", read_only)
    monkeypatch.setattr(storage.Path, "write_bytes", read_only)
    for write in (
        lambda: store.put_bytes("k", b"v"),
        lambda: store.create_if_absent("k", b"v"),
        lambda: store.ensure_ready(),
    ):
        with pytest.raises(PermissionDeniedError, match="Read-only file system"):
            write()
    assert store.get_bytes("kept") == b"1"  # reading still works


@pytest.mark.slow
def test_bucket_named_like_most_buckets(tmp_path, folder):
    """A bucket (and keys) containing "bucket": publish, exists, create work as anywhere."""
    with s3_server(bucket="ml-bucket") as server:
        store = open_store(server.uri("bucket-prefix"))
        assert not store.exists("bucket/missing")
        store.publish_dir("bucket/1", folder, "metadata.json")
        assert store.exists("bucket/1/metadata.json")
        assert store.create_if_absent("bucket/claim", b"x")
        assert not store.create_if_absent("bucket/claim", b"y")
        with pytest.raises(NotFoundError):
            store.get_bytes("bucket/missing")
        with pytest.raises(AlreadyExistsError):
            store.publish_dir("bucket/1", folder, "metadata.json")
