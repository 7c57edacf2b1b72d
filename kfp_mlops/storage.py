"""One storage interface, two backends, one object layout.

A store is addressed by a URI: a local folder (``/path`` or ``file:///path``), the
default, or ``s3://bucket/prefix`` on any S3-compatible server through the ``minio``
client. S3 settings come from the variables KServe's storage initializer reads, so one
Kubernetes Secret serves both training and serving:

``AWS_ENDPOINT_URL`` (e.g. ``http://minio-service.kubeflow:9000``; default AWS S3),
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``S3_VERIFY_SSL`` (``0`` to skip certificate checks).

Keys are ``/``-separated relative paths (``models/wine/3/model.joblib``). Readers never
see half a publication: :meth:`Store.publish_dir` writes every file of a folder and then
its *commit file* last, and readers only trust a folder whose commit file exists. The
local backend also builds the folder beside its target and renames it into place.
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_STORE_ENV = "KFP_MLOPS_STORE"
DEFAULT_LOCAL_STORE = "./mlops-store"


class StoreError(RuntimeError):
    """The store cannot be reached or does not hold what was asked for."""


class AlreadyExistsError(StoreError):
    """A publication target exists already; published folders are immutable."""


class Store(ABC):
    """Minimal object store: bytes under ``/``-separated keys."""

    uri: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` (replacing it)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read the object under ``key``; :class:`StoreError` if it is missing."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key below ``prefix`` (recursively), sorted."""

    @abstractmethod
    def upload_file(self, key: str, path: str | Path) -> None:
        """Copy a local file into the store under ``key``."""

    @abstractmethod
    def download_file(self, key: str, path: str | Path) -> None:
        """Copy the object under ``key`` to a local file."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object (no error if it is gone)."""

    @abstractmethod
    def publish_dir(self, prefix: str, local_dir: str | Path, commit_file: str) -> None:
        """Publish every file of ``local_dir`` below ``prefix``, ``commit_file`` last.

        Raises :class:`AlreadyExistsError` when ``prefix`` is already published.
        """

    @abstractmethod
    def ensure_ready(self) -> None:
        """Fail now, with a clear :class:`StoreError`, if the store cannot be used."""

    def uri_for(self, key: str) -> str:
        """Full URI of ``key`` (a path for a local store, ``s3://...`` for S3)."""
        return f"{self.uri.rstrip('/')}/{key}"

    def children(self, prefix: str) -> builtins.list[str]:
        """Names of the direct sub-folders/objects below ``prefix``."""
        prefix = prefix.rstrip("/") + "/"
        names = {k[len(prefix):].split("/", 1)[0] for k in self.list(prefix)}
        return sorted(n for n in names if n)

    def download_dir(self, prefix: str, local_dir: str | Path) -> Path:
        """Copy every object below ``prefix`` into ``local_dir``; return it."""
        local_dir = Path(local_dir)
        prefix = prefix.rstrip("/") + "/"
        for key in self.list(prefix):
            target = local_dir / key[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.download_file(key, target)
        return local_dir


class LocalStore(Store):
    """A folder on the local disk."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise StoreError(f"key {key!r} escapes the store root {self.root}")
        return path

    def ensure_ready(self) -> None:
        self._ensure_root()

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the local store folder {self.root}: {exc.strerror}. "
                "Pass a writable folder with --store or KFP_MLOPS_STORE."
            ) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        self._ensure_root()
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target, then rename: a reader never sees half a file.
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.uri_for(key)} does not exist") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            rel = path.relative_to(self.root).as_posix()
            # Folders being built (".tmp-*") and half-written files are not listed.
            if path.is_file() and not any(p.startswith(".") for p in rel.split("/")):
                keys.append(rel)
        return sorted(keys)

    def upload_file(self, key: str, path: str | Path) -> None:
        self._ensure_root()
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)

    def download_file(self, key: str, path: str | Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise StoreError(f"{self.uri_for(key)} does not exist")
        shutil.copyfile(source, path)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def publish_dir(self, prefix: str, local_dir: str | Path, commit_file: str) -> None:
        self._ensure_root()
        target = self._path(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
        try:
            files = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())
            for path in files:
                if path.relative_to(local_dir).as_posix() == commit_file:
                    continue
                dest = staging / path.relative_to(local_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
            shutil.copyfile(Path(local_dir) / commit_file, staging / commit_file)
            os.chmod(staging, 0o755)
            # rename(2) onto a missing name is atomic, and fails if another writer won.
            try:
                os.rename(staging, target)
            except OSError:
                raise AlreadyExistsError(f"{self.uri_for(prefix)} is already published") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class S3Store(Store):
    """A bucket and prefix on an S3-compatible server (MinIO, SeaweedFS, AWS S3)."""

    def __init__(self, uri: str, client=None):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"{uri!r} is not an s3://bucket/prefix URI")
        self.uri = uri.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client or _minio_client_from_env()
        self._bucket_checked = False

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn, *args, **kwargs):
        from minio.error import S3Error

        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise StoreError(f"{what} does not exist") from None
            if exc.code == "NoSuchBucket":
                raise StoreError(
                    f"bucket {self.bucket!r} does not exist on {_endpoint_text()}; "
                    "create it first (for example `mc mb`) or point the store at another bucket."
                ) from None
            raise StoreError(f"S3 error on {what}: {exc.code}: {exc.message}") from None
        except StoreError:
            raise
        except Exception as exc:  # urllib3 connection errors, DNS failures, TLS
            raise StoreError(
                f"cannot reach the S3 store {self.uri} at {_endpoint_text()}: "
                f"{type(exc).__name__}: {exc}. Check AWS_ENDPOINT_URL and the credentials "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), or use a local folder as store."
            ) from None

    def ensure_ready(self) -> None:
        self.ensure_bucket()

    def ensure_bucket(self) -> None:
        """Check once that the bucket exists, with a clear error otherwise."""
        if self._bucket_checked:
            return
        if not self._call(self.uri, self.client.bucket_exists, self.bucket):
            raise StoreError(
                f"bucket {self.bucket!r} does not exist on {_endpoint_text()}; "
                "create it first (for example `mc mb`) or point the store at another bucket."
            )
        self._bucket_checked = True

    def put_bytes(self, key: str, data: bytes) -> None:
        self.ensure_bucket()
        self._call(
            self.uri_for(key), self.client.put_object,
            self.bucket, self._key(key), io.BytesIO(data), len(data),
        )

    def get_bytes(self, key: str) -> bytes:
        response = self._call(
            self.uri_for(key), self.client.get_object, self.bucket, self._key(key)
        )
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self._call(self.uri_for(key), self.client.stat_object, self.bucket, self._key(key))
        except StoreError as exc:
            if "does not exist" in str(exc) and "bucket" not in str(exc):
                return False
            raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        full = self._key(prefix) if prefix else (self.prefix + "/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0

        def names() -> Iterator[str]:
            for obj in self.client.list_objects(self.bucket, prefix=full, recursive=True):
                yield obj.object_name[strip:]

        return sorted(self._call(self.uri_for(prefix), lambda: list(names())))

    def upload_file(self, key: str, path: str | Path) -> None:
        self.ensure_bucket()
        self._call(
            self.uri_for(key), self.client.fput_object, self.bucket, self._key(key), str(path)
        )

    def download_file(self, key: str, path: str | Path) -> None:
        self._call(
            self.uri_for(key), self.client.fget_object, self.bucket, self._key(key), str(path)
        )

    def delete(self, key: str) -> None:
        self._call(self.uri_for(key), self.client.remove_object, self.bucket, self._key(key))

    def publish_dir(self, prefix: str, local_dir: str | Path, commit_file: str) -> None:
        prefix = prefix.rstrip("/")
        if self.exists(f"{prefix}/{commit_file}"):
            raise AlreadyExistsError(f"{self.uri_for(prefix)} is already published")
        files = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())
        rel = [p.relative_to(local_dir).as_posix() for p in files]
        if commit_file not in rel:
            raise StoreError(f"{local_dir} has no {commit_file} to publish last")
        # S3 has no rename: the commit file, written last, is what makes the folder real.
        for path, name in zip(files, rel, strict=True):
            if name != commit_file:
                self.upload_file(f"{prefix}/{name}", path)
        self.upload_file(f"{prefix}/{commit_file}", Path(local_dir) / commit_file)


def _endpoint_text() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS S3 (AWS_ENDPOINT_URL is not set)"


def _minio_client_from_env():
    """Build a ``minio.Minio`` client from KServe's storage-initializer variables."""
    from minio import Minio

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT")
    if endpoint and "://" not in endpoint:
        # KServe's older form: S3_ENDPOINT=host:port with S3_USE_HTTPS=0|1.
        plain = os.environ.get("S3_USE_HTTPS", "1").lower() in ("0", "false", "no")
        endpoint = f"{'http' if plain else 'https'}://{endpoint}"
    parsed = urlparse(endpoint or "https://s3.amazonaws.com")
    host, secure = parsed.netloc, parsed.scheme == "https"
    verify = os.environ.get("S3_VERIFY_SSL", "1").lower() not in ("0", "false", "no")
    return Minio(
        host,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        session_token=os.environ.get("AWS_SESSION_TOKEN"),
        secure=secure,
        region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
        cert_check=verify,
    )


def default_store_uri() -> str:
    """The store used when none is given: ``$KFP_MLOPS_STORE`` or ``./mlops-store``."""
    return os.environ.get(DEFAULT_STORE_ENV) or DEFAULT_LOCAL_STORE


def open_store(uri: str | None = None) -> Store:
    """Open the store named by ``uri`` (default: :func:`default_store_uri`)."""
    uri = uri or default_store_uri()
    if uri.startswith("s3://"):
        return S3Store(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreError(
            f"unsupported store URI {uri!r}: use a local folder or s3://bucket/prefix"
        )
    return LocalStore(uri[len("file://"):] if uri.startswith("file://") else uri)
