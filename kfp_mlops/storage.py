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

Errors are typed, the same from both backends, and decided from error codes, HTTP
statuses and exception types, never from message text. All derive from
:class:`StoreError`:

- :class:`NotFoundError`: no object under the key (the store answered);
- :class:`BucketNotFoundError`: the store's bucket does not exist (a configuration
  error, so never mistaken for a missing key);
- :class:`UnreachableError`: connection refused or dropped, timeouts, 5xx answers
  after the retries, an endpoint that does not speak S3;
- :class:`PermissionDeniedError`: 403 / ``AccessDenied`` / wrong credentials, or a
  local folder that cannot be written;
- :class:`ConflictError`: a conditional write lost to another writer;
  :class:`AlreadyExistsError` (a publication target exists) is one.

:meth:`Store.create_if_absent` is the one atomic create-if-absent: an exclusive hard
link on a local folder, a ``PUT`` with ``If-None-Match: *`` on S3. Version numbers of
models (the registry's claims) and of schemas (the commit file of
:meth:`Store.publish_dir`) are taken with it.

S3 requests are retried with bounded exponential backoff by the HTTP client (urllib3:
connection errors, timeouts, 500/502/503/504 answers; idempotent methods only), and a
read whose body breaks off is retried here. ``KFP_MLOPS_S3_TIMEOUT`` (seconds, default
300), ``KFP_MLOPS_S3_RETRIES`` (default 5) and ``KFP_MLOPS_S3_BACKOFF`` (seconds, default
0.2, doubled per retry) tune that.
"""

from __future__ import annotations

import builtins
import copy
import errno
import http.client
import io
import logging
import os
import shutil
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlparse

from kfp_mlops.errors import KfpMlopsError

DEFAULT_STORE_ENV = "KFP_MLOPS_STORE"
DEFAULT_LOCAL_STORE = "./mlops-store"
S3_TIMEOUT_ENV = "KFP_MLOPS_S3_TIMEOUT"
S3_RETRIES_ENV = "KFP_MLOPS_S3_RETRIES"
S3_BACKOFF_ENV = "KFP_MLOPS_S3_BACKOFF"
# Probe objects (ensure_ready, the conditional-write probe) live below this prefix.
PROBE_PREFIX = ".kfp-mlops"
# create_if_absent sends one PUT; larger bodies would go out as a multipart upload.
MAX_CONDITIONAL_BYTES = 5 * 1024 * 1024

_log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreError(KfpMlopsError, RuntimeError):
    """The store cannot be used for what was asked (base of every store error)."""

    def with_detail(self, detail: str) -> StoreError:
        """The same error (same type) with ``detail`` appended to its message."""
        extended = copy.copy(self)
        extended.args = (f"{self} {detail}".strip(),)
        return extended


class NotFoundError(StoreError):
    """No object is stored under the key; the store itself was reached and answered."""


class BucketNotFoundError(StoreError):
    """The store's S3 bucket does not exist: a configuration error, not a missing key."""


class UnreachableError(StoreError):
    """The store did not answer: refused or dropped connection, timeout, 5xx after retries."""


class PermissionDeniedError(StoreError):
    """The store refused the request: credentials, a bucket policy, a read-only folder."""


class ConflictError(StoreError):
    """A conditional write lost to another writer."""


class AlreadyExistsError(ConflictError):
    """A publication target exists already; published folders are immutable."""


class Store(ABC):
    """Minimal object store: bytes under ``/``-separated keys.

    Where the backends differ in a way a caller must act on, the store says so itself
    (:attr:`exclusive_publish`, :attr:`read_concurrency`, :meth:`list_folded`), so no
    caller asks which backend it holds.
    """

    uri: str
    # Whether publish_dir alone decides between publishers of one prefix: the folder is
    # built apart and moved into place whole, so a loser leaves no file behind. Where
    # files land in place before the commit file decides (S3), publishers must take the
    # prefix first (the registry claims a version number with create_if_absent).
    exclusive_publish: bool = False
    # How many reads are worth running at once: 1 where a read is a system call, more
    # where each read is a network round trip.
    read_concurrency: int = 1

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` (replacing it)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read the object under ``key``; :class:`NotFoundError` if it is missing."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (errors other than absence raise)."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key below ``prefix`` (recursively), sorted."""

    @abstractmethod
    def upload_file(self, key: str, path: str | Path) -> None:
        """Copy a local file into the store under ``key``."""

    @abstractmethod
    def download_file(self, key: str, path: str | Path) -> None:
        """Copy the object under ``key`` to a local file."""

    def open_file(self, key: str) -> BinaryIO:
        """A seekable binary reader of ``key`` that reads only the bytes asked for.

        Parquet readers seek to the footer and to the row groups they need, so a shard of
        a large file costs its own bytes, not the file's.
        """
        raise NotImplementedError

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object (no error if it is gone)."""

    @abstractmethod
    def create_if_absent(self, key: str, data: bytes) -> bool:
        """Atomically create ``key`` holding ``data`` unless an object is there already.

        ``True``: this call created it (on S3, possibly through a retry of its request
        whose first answer was lost: each call marks its object with its own token, so
        it still knows). ``False``: another object is there, another writer's or one
        made earlier; it is never overwritten. Objects are at most
        :data:`MAX_CONDITIONAL_BYTES`.
        """

    @abstractmethod
    def publish_dir(self, prefix: str, local_dir: str | Path, commit_file: str) -> None:
        """Publish every file of ``local_dir`` below ``prefix``, ``commit_file`` last.

        The commit file is created with :meth:`create_if_absent`: of two publishers of
        one prefix exactly one succeeds, the other gets :class:`AlreadyExistsError`.
        Raises :class:`AlreadyExistsError` when ``prefix`` is already published.
        """

    @abstractmethod
    def ensure_ready(self) -> None:
        """Prove the store usable and writable now, or raise a typed :class:`StoreError`.

        A probe object is written and deleted, so a read-only store fails here, before
        any work, rather than at publish time.
        """

    def supports_conditional_writes(self) -> bool:
        """Whether :meth:`create_if_absent` is atomic on this store."""
        return True

    def uri_for(self, key: str) -> str:
        """Full URI of ``key`` (a path for a local store, ``s3://...`` for S3)."""
        return f"{self.uri.rstrip('/')}/{key}"

    def list_folded(
        self, prefix: str, commit_file: str, is_publication: Callable[[str], bool]
    ) -> builtins.list[str]:
        """Every key below the folder ``prefix``, sorted, each publication folded into one key.

        ``is_publication(path)`` tells which folders (paths relative to ``prefix``, such
        as ``3`` or ``wine/3``) only :meth:`publish_dir` writes. Such a folder is listed
        as ``<folder>/<commit_file>`` alone once published, and not at all before (a
        publication in progress); every other key is listed as :meth:`list` lists it.
        What is published is known without the cost of what it holds: a local store
        takes a folder's existence as proof (``publish_dir`` renames it into place
        whole) and never looks inside; S3 looks for its commit file in one listing.
        """
        base = f"{prefix.rstrip('/')}/" if prefix else ""
        keys = self.list(base)
        present = set(keys)
        folded = set()
        for key in keys:
            parts = key[len(base):].split("/")
            folder = next(
                ("/".join(parts[:i]) for i in range(1, len(parts))
                 if is_publication("/".join(parts[:i]))),
                None,
            )
            if folder is None:
                folded.add(key)
            elif f"{base}{folder}/{commit_file}" in present:
                folded.add(f"{base}{folder}/{commit_file}")
        return sorted(folded)

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


def _files_to_publish(local_dir: str | Path, commit_file: str) -> list[tuple[Path, str]]:
    """``(path, relative name)`` of every file in ``local_dir``, the commit file last."""
    files = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())
    named = [(p, p.relative_to(local_dir).as_posix()) for p in files]
    if commit_file not in [name for _, name in named]:
        raise StoreError(f"{local_dir} has no {commit_file} to publish last")
    return [(p, n) for p, n in named if n != commit_file] + [
        (Path(local_dir) / commit_file, commit_file)
    ]


# ---------------------------------------------------------------------- local folder

_DENIED_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


def _local_error(exc: OSError, what: str, doing: str) -> StoreError:
    """The typed error for an ``OSError`` raised while ``doing`` (read/write) ``what``."""
    reason = exc.strerror or str(exc)
    if doing == "read" and isinstance(exc, FileNotFoundError | NotADirectoryError):
        return NotFoundError(f"{what} does not exist")
    if doing == "read" and isinstance(exc, IsADirectoryError):
        return NotFoundError(f"{what} does not exist (it is a folder, not an object)")
    if isinstance(exc, PermissionError) or exc.errno in _DENIED_ERRNOS:
        hint = " Pass a writable folder with --store or KFP_MLOPS_STORE." if doing != "read" else ""
        return PermissionDeniedError(f"cannot {doing} {what}: {reason}.{hint}")
    return StoreError(f"cannot {doing} {what}: {reason}")


class LocalStore(Store):
    """A folder on the local disk."""

    exclusive_publish = True  # publish_dir renames a finished folder into place
    read_concurrency = 1

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise StoreError(f"key {key!r} escapes the store root {self.root}")
        return path

    @contextmanager
    def _os(self, what: str, doing: str) -> Iterator[None]:
        """Turn ``OSError`` into the typed store error."""
        try:
            yield
        except OSError as exc:
            raise _local_error(exc, what, doing) from exc

    def ensure_ready(self) -> None:
        self._ensure_root()
        probe = self.root / f"{PROBE_PREFIX}-probe-{uuid.uuid4().hex}"
        with self._os(f"the local store {self.root}", "write to"):
            probe.write_bytes(b"kfp-mlops write probe")
            probe.unlink()

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error = _local_error(exc, f"the local store folder {self.root}", "create")
            if not isinstance(error, PermissionDeniedError):
                error = error.with_detail("Pass a writable folder with --store or KFP_MLOPS_STORE.")
            raise error from exc

    def _write_beside(self, path: Path, write: Callable[[Path], object]) -> Path:
        """Write a temporary file beside ``path`` with ``write``; return its path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            write(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def put_bytes(self, key: str, data: bytes) -> None:
        self._ensure_root()
        path = self._path(key)
        with self._os(self.uri_for(key), "write"):
            # Write beside the target, then rename: a reader never sees half a file.
            tmp = self._write_beside(path, lambda t: t.write_bytes(data))
            try:
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)

    def create_if_absent(self, key: str, data: bytes) -> bool:
        self._ensure_root()
        path = self._path(key)
        with self._os(self.uri_for(key), "write"):
            tmp = self._write_beside(path, lambda t: t.write_bytes(data))
            try:
                # link(2) is atomic and refuses a taken name; the content is whole at once.
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno in (errno.EROFS, errno.EACCES):
                    raise
                # A file system without hard links (EPERM on vfat, ENOTSUP): O_EXCL.
                return self._create_exclusive(path, data)
            finally:
                tmp.unlink(missing_ok=True)
        return True

    @staticmethod
    def _create_exclusive(path: Path, data: bytes) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        with self._os(self.uri_for(key), "read"):
            return path.read_bytes()

    def exists(self, key: str) -> bool:
        path = self._path(key)
        with self._os(self.uri_for(key), "read"):
            return path.is_file()

    def list(self, prefix: str = "") -> list[str]:
        return self._walk(prefix)

    def list_folded(
        self, prefix: str, commit_file: str, is_publication: Callable[[str], bool]
    ) -> builtins.list[str]:
        # Strict: a listing of what is published must not skip a folder it cannot read.
        return self._walk(prefix, (commit_file, is_publication), strict=True)

    def _walk(
        self,
        prefix: str,
        fold: tuple[str, Callable[[str], bool]] | None = None,
        *,
        strict: bool = False,
    ) -> builtins.list[str]:
        """Keys below ``prefix``; ``fold``: (commit file, is_publication) of list_folded.

        ``strict``: a folder that cannot be read raises instead of being skipped.
        """
        base = self._path(prefix) if prefix else self.root
        what = self.uri_for(prefix)
        with self._os(what, "read"):
            if base.is_file():
                return [prefix]
            if not base.is_dir():
                return []
            if any(p.startswith(".") for p in base.relative_to(self.root).parts):
                return []

        def unless_gone(exc: OSError) -> None:
            if strict and not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise exc

        keys = []
        # os.walk skips folders that vanish while it walks (other writers' staging
        # folders); folders being built (".tmp-*") and half-written files are not listed.
        with self._os(what, "read"):
            for folder, dirs, files in os.walk(base, onerror=unless_gone):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                rel = Path(folder).relative_to(self.root).as_posix()
                start = f"{rel}/" if rel != "." else ""
                if fold is not None:
                    commit_file, is_publication = fold
                    below = Path(folder).relative_to(base).as_posix()
                    inner = f"{below}/" if below != "." else ""
                    # A publication folder exists only once renamed into place whole.
                    published = {d for d in dirs if is_publication(f"{inner}{d}")}
                    keys.extend(f"{start}{d}/{commit_file}" for d in published)
                    dirs[:] = [d for d in dirs if d not in published]
                keys.extend(f"{start}{name}" for name in files if not name.startswith("."))
        return sorted(keys)

    def upload_file(self, key: str, path: str | Path) -> None:
        self._ensure_root()
        target = self._path(key)
        with self._os(self.uri_for(key), "write"):
            tmp = self._write_beside(target, lambda t: shutil.copyfile(path, t))
            try:
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)

    def download_file(self, key: str, path: str | Path) -> None:
        source = self._path(key)
        with self._os(self.uri_for(key), "read"):
            if not source.is_file():
                raise FileNotFoundError(errno.ENOENT, "no such object", str(source))
            shutil.copyfile(source, path)

    def open_file(self, key: str) -> BinaryIO:
        path = self._path(key)
        with self._os(self.uri_for(key), "read"):
            return path.open("rb")

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._os(self.uri_for(key), "delete"):
            path.unlink(missing_ok=True)

    def publish_dir(self, prefix: str, local_dir: str | Path, commit_file: str) -> None:
        self._ensure_root()
        target = self._path(prefix)
        what = self.uri_for(prefix)
        files = _files_to_publish(local_dir, commit_file)
        not_published = f"Nothing was published under {what}."
        staging: Path | None = None
        try:
            with self._os(what, "publish"):
                target.parent.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
                for path, name in files:  # the commit file last
                    dest = staging / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, dest)
                os.chmod(staging, 0o755)
                # rename(2) onto a missing name is atomic, and fails if another writer won.
                try:
                    os.rename(staging, target)
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) or target.exists():
                        raise AlreadyExistsError(f"{what} is already published") from None
                    raise
        except AlreadyExistsError:
            raise
        except StoreError as exc:
            raise exc.with_detail(not_published) from exc
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------- S3

_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"}
_DENIED_CODES = {
    "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "AccountProblem", "InvalidSecurity",
}
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "OperationAborted"}
_TRANSIENT_CODES = {
    "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "ServerError",
}
_READ_ATTEMPTS = 3  # a read whose body breaks off after the headers: 2 more tries
_WRITER_META = "kfp-mlops-writer"  # user metadata: which create_if_absent call wrote it


def _if_none_match():
    """An ``If-None-Match: *`` header for ``Minio.put_object``, through its public API.

    minio 7.2 (the newest release) has no ``headers=`` argument on ``put_object`` and
    turns ``metadata`` keys into ``X-Amz-Meta-*``; the headers of its public ``Sse``
    interface are the one way it sends a header verbatim (and signs it).
    """
    from minio.sse import Sse

    class _IfNoneMatch(Sse):
        def headers(self) -> dict[str, str]:
            return {"If-None-Match": "*"}

        def tls_required(self) -> bool:
            return False

    return _IfNoneMatch()


class S3Store(Store):
    """A bucket and prefix on an S3-compatible server (MinIO, SeaweedFS, AWS S3)."""

    exclusive_publish = False  # no rename: files land in place before the commit file
    read_concurrency = 8

    def __init__(self, uri: str, client=None):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"{uri!r} is not an s3://bucket/prefix URI")
        self.uri = uri.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client or _minio_client_from_env()
        self._bucket_checked = False
        self._conditional: bool | None = None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _no_bucket(self) -> BucketNotFoundError:
        return BucketNotFoundError(
            f"bucket {self.bucket!r} does not exist on {_endpoint_text()}; "
            "create it first (for example `mc mb`) or point the store at another bucket."
        )

    def _error(self, exc: BaseException, what: str) -> StoreError:
        """The typed error for an exception of the minio client (codes and types only)."""
        import urllib3
        from minio.error import InvalidResponseError, S3Error, ServerError

        endpoint = _endpoint_text()
        if isinstance(exc, S3Error):
            code = exc.code or ""
            status = getattr(exc.response, "status", None)
            detail = f"{code}: {exc.message}" if exc.message else code
            if code == "NoSuchBucket":
                return self._no_bucket()
            if code in _NOT_FOUND_CODES or status == 404:
                return NotFoundError(f"{what} does not exist")
            if code in _DENIED_CODES or status in (401, 403):
                return PermissionDeniedError(
                    f"the S3 store at {endpoint} refused access to {what} ({detail}). Check "
                    "the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the "
                    "bucket's policy: the store must be readable and writable."
                )
            if code in _CONFLICT_CODES or status in (409, 412):
                return ConflictError(f"conflicting write of {what}: {detail}")
            if code in _TRANSIENT_CODES or (status or 0) >= 500:
                return UnreachableError(
                    f"the S3 store {self.uri} at {endpoint} kept failing on {what} "
                    f"(HTTP {status}, {detail}) after retries; try again later."
                )
            return StoreError(f"S3 error on {what}: {detail}")
        if isinstance(exc, ServerError):
            if exc.status_code >= 500:
                return UnreachableError(
                    f"the S3 store {self.uri} at {endpoint} kept failing on {what} "
                    f"(HTTP {exc.status_code}) after retries; try again later."
                )
            return StoreError(f"S3 error on {what}: HTTP {exc.status_code}")
        if isinstance(exc, InvalidResponseError):
            return UnreachableError(
                f"the endpoint {endpoint} of the S3 store {self.uri} did not answer {what} "
                f"as S3 does ({exc}); check AWS_ENDPOINT_URL."
            )
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and isinstance(
            exc.reason, urllib3.exceptions.ResponseError
        ):
            return UnreachableError(
                f"the S3 store {self.uri} at {endpoint} kept failing on {what} "
                f"({exc.reason}) after retries; try again later."
            )
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            exc = exc.reason  # the connection error itself, after the retries
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError | http.client.HTTPException):
            return UnreachableError(
                f"cannot reach the S3 store {self.uri} at {endpoint}: "
                f"{type(exc).__name__}: {exc}. Check AWS_ENDPOINT_URL and the credentials "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), or use a local folder as store."
            )
        return StoreError(f"S3 request on {what} failed: {type(exc).__name__}: {exc}")

    def _call(self, what: str, fn: Callable[..., T], *args: Any, read: bool = False,
              **kwargs: Any) -> T:
        """Run one client call; typed errors. ``read``: retry a body that broke off."""
        import urllib3

        attempts = _READ_ATTEMPTS if read else 1
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except StoreError:
                raise
            except Exception as exc:
                error = self._error(exc, what)
                # urllib3 retried the request already (MaxRetryError); a body that broke
                # off after the headers was not retried by anyone: that is retried here.
                again = (
                    isinstance(error, UnreachableError)
                    and not isinstance(exc, urllib3.exceptions.MaxRetryError)
                    and attempt + 1 < attempts
                )
                if not again:
                    raise error from exc
                time.sleep(min(2.0, _env_float(S3_BACKOFF_ENV, 0.2) * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_ready(self) -> None:
        self.ensure_bucket()
        key = f"{PROBE_PREFIX}/ready-{uuid.uuid4().hex}"
        try:
            self.put_bytes(key, b"kfp-mlops write probe")
            self.delete(key)
        except PermissionDeniedError as exc:
            raise exc.with_detail(
                f"The store {self.uri} can be reached but not written (a probe object "
                f"{self.uri_for(key)} could not be written and deleted)."
            ) from exc

    def ensure_bucket(self) -> None:
        """Check once that the bucket exists, with a clear error otherwise."""
        if self._bucket_checked:
            return
        try:
            exists = self._call(self.uri, self.client.bucket_exists, self.bucket, read=True)
        except PermissionDeniedError:
            # A key scoped to a prefix (a Kubeflow profile's: private/<namespace>/...) may
            # not look at the bucket itself (SeaweedFS checks HEAD bucket against the
            # bucket's root); its object requests still say NoSuchBucket if it is absent.
            exists = True
        if not exists:
            raise self._no_bucket()
        self._bucket_checked = True

    def put_bytes(self, key: str, data: bytes) -> None:
        self.ensure_bucket()
        self._call(
            self.uri_for(key), self.client.put_object,
            self.bucket, self._key(key), io.BytesIO(data), len(data),
        )

    def create_if_absent(self, key: str, data: bytes) -> bool:
        if len(data) > MAX_CONDITIONAL_BYTES:
            raise StoreError(
                f"create_if_absent writes at most {MAX_CONDITIONAL_BYTES} bytes; "
                f"{self.uri_for(key)} would hold {len(data)}"
            )
        self.ensure_bucket()
        what = self.uri_for(key)
        token = uuid.uuid4().hex
        for attempt in range(10):
            try:
                self._call(
                    what, self.client.put_object, self.bucket, self._key(key),
                    io.BytesIO(data), len(data), sse=_if_none_match(),
                    metadata={_WRITER_META: token},
                )
                return True
            except ConflictError as exc:
                cause = exc.__cause__
                if getattr(cause, "code", "") != "PreconditionFailed":
                    # AWS answers 409 while another conditional write of the key is in
                    # flight: wait for it to land, then ask again.
                    time.sleep(0.05 * (attempt + 1))
                    continue
                retries = getattr(getattr(cause, "response", None), "retries", None)
                if retries is not None and not retries.history:
                    return False  # sent once, refused: another writer's object
            # 412 after a re-sent request: the object is ours when an earlier attempt of
            # this call landed and its answer was lost.
            try:
                found = self._call(
                    what, self.client.stat_object, self.bucket, self._key(key), read=True
                )
            except NotFoundError:
                continue  # deleted in between (a probe); ask again
            return (found.metadata or {}).get(f"x-amz-meta-{_WRITER_META}") == token
        raise ConflictError(f"conditional write of {what} kept conflicting; retry later")

    def supports_conditional_writes(self) -> bool:
        """Probe once whether the server refuses a second ``If-None-Match: *`` create."""
        if self._conditional is None:
            key = f"{PROBE_PREFIX}/probe-{uuid.uuid4().hex}"
            try:
                first = self.create_if_absent(key, b"1")
                self._conditional = first and not self.create_if_absent(key, b"2")
            finally:
                self.delete(key)
            if not self._conditional:
                _log.warning(
                    "the S3 server at %s ignores If-None-Match: writes of new versions fall "
                    "back to slower listing claims", _endpoint_text(),
                )
        return self._conditional

    def get_bytes(self, key: str) -> bytes:
        return self.read_range(key, 0, 0)

    def exists(self, key: str) -> bool:
        # A HEAD on a missing bucket reads as a missing key: check the bucket first.
        self.ensure_bucket()
        try:
            self._call(
                self.uri_for(key), self.client.stat_object, self.bucket, self._key(key),
                read=True,
            )
        except NotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        full = self._key(prefix) if prefix else (self.prefix + "/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0

        def names() -> Iterator[str]:
            for obj in self.client.list_objects(self.bucket, prefix=full, recursive=True):
                yield obj.object_name[strip:]

        return sorted(self._call(self.uri_for(prefix), lambda: list(names()), read=True))

    def upload_file(self, key: str, path: str | Path) -> None:
        self.ensure_bucket()
        self._call(
            self.uri_for(key), self.client.fput_object, self.bucket, self._key(key), str(path)
        )

    def download_file(self, key: str, path: str | Path) -> None:
        self._call(
            self.uri_for(key), self.client.fget_object, self.bucket, self._key(key), str(path),
            read=True,
        )

    def open_file(self, key: str) -> BinaryIO:
        stat = self._call(self.uri_for(key), self.client.stat_object, self.bucket,
                          self._key(key), read=True)
        return io.BufferedReader(_S3RangeFile(self, key, int(stat.size)), buffer_size=1 << 20)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``key`` from ``offset`` (one GET; 0, 0: the whole object)."""
        def fetch() -> bytes:
            response = self.client.get_object(self.bucket, self._key(key), offset=offset,
                                              length=length)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call(self.uri_for(key), fetch, read=True)

    def delete(self, key: str) -> None:
        self._call(self.uri_for(key), self.client.remove_object, self.bucket, self._key(key))

    def publish_dir(self, prefix: str, local_dir: str | Path, commit_file: str) -> None:
        prefix = prefix.rstrip("/")
        what = self.uri_for(prefix)
        commit_key = f"{prefix}/{commit_file}"
        files = _files_to_publish(local_dir, commit_file)
        commit = files[-1][0].read_bytes()
        try:
            # Skip the uploads when the folder is published already (a folder that is its
            # commit file alone needs no such check: the create refuses it anyway).
            if len(files) > 1 and self.exists(commit_key):
                raise AlreadyExistsError(f"{what} is already published")
            # S3 has no rename: the commit file, written last, makes the folder real.
            for path, name in files[:-1]:
                self.upload_file(f"{prefix}/{name}", path)
        except AlreadyExistsError:
            raise
        except StoreError as exc:
            raise exc.with_detail(
                f"Nothing was published under {what}: its commit file {commit_file} was not "
                "written, so readers do not see the files uploaded so far."
            ) from exc
        try:
            created = self.create_if_absent(commit_key, commit)
        except StoreError as exc:
            raise exc.with_detail(
                f"Whether {what} was published is unknown: the write of its commit file "
                f"{commit_file} failed in flight (it is published if "
                f"{self.uri_for(commit_key)} exists)."
            ) from exc
        if not created:
            raise AlreadyExistsError(f"{what} is already published (by another writer)")


def _endpoint_text() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS S3 (AWS_ENDPOINT_URL is not set)"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StoreError(f"{name}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise StoreError(f"{name}={raw!r} must not be negative")
    return value


def _http_client(verify: bool):
    """urllib3 pool as minio builds its own, with the timeout and retries configurable."""
    import certifi
    import urllib3

    timeout = _env_float(S3_TIMEOUT_ENV, 300.0)
    retries = int(_env_float(S3_RETRIES_ENV, 5))
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        maxsize=10,
        cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=retries,
            backoff_factor=_env_float(S3_BACKOFF_ENV, 0.2),
            backoff_max=10,
            status_forcelist=[500, 502, 503, 504],
        ),
    )


class _S3RangeFile(io.RawIOBase):
    """A read-only, seekable object of an S3 store: each read is one ranged GET."""

    def __init__(self, store: S3Store, key: str, size: int):
        self.store, self.key, self.size, self.position = store, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self.size - self.position)
        if length <= 0:
            return 0
        data = self.store.read_range(self.key, self.position, length)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def _minio_client_from_env():
    """Build a ``minio.Minio`` client from KServe's storage-initializer variables."""
    from minio import Minio

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT")
    if endpoint and "://" not in endpoint:
        # KServe's older form: S3_ENDPOINT=host:port with S3_USE_HTTPS=0|1.
        plain = os.environ.get("S3_USE_HTTPS", "1").lower() in ("0", "false", "no")
        endpoint = f"{'http' if plain else 'https'}://{endpoint}"
    parsed = urlparse(endpoint or "https://s3.amazonaws.com")
    _check_endpoint(parsed, endpoint or "")
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
        http_client=_http_client(verify),
    )


def _check_endpoint(parsed: Any, endpoint: str) -> None:
    """Refuse an endpoint the minio client would choke on, naming the fix (no secret shown)."""
    shown = endpoint
    if parsed.username is not None or parsed.password is not None:
        shown = f"{parsed.scheme}://***@{parsed.hostname or ''}"
        raise StoreError(
            f"AWS_ENDPOINT_URL={shown!r} carries credentials (user:password@host); S3 "
            "clients sign requests with a key instead. Set AWS_ENDPOINT_URL to "
            f"{parsed.scheme}://{parsed.hostname or 'HOST'}"
            f"{':' + str(parsed.port) if _port_or_none(parsed) else ''} and the user and "
            "password as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StoreError(
            f"AWS_ENDPOINT_URL={shown!r} is not an http(s)://host[:port] URL; set it to "
            "e.g. http://minio-service.kubeflow:9000 (or unset it for AWS S3)"
        )
    if parsed.path.strip("/"):
        raise StoreError(
            f"AWS_ENDPOINT_URL={shown!r} has a path ({parsed.path!r}); an S3 endpoint is "
            "http(s)://host[:port] only: put the bucket and prefix in the store URI "
            "(s3://bucket/prefix)"
        )
    if _port_or_none(parsed) is False:
        raise StoreError(
            f"AWS_ENDPOINT_URL={shown!r} has an invalid port; give a number from 1 to 65535"
        )


def _port_or_none(parsed: Any) -> int | None | bool:
    """The endpoint's port, None when none is given, False when it is not a valid port."""
    try:
        return parsed.port
    except ValueError:
        return False


def default_store_uri() -> str:
    """The store used when none is given: ``$KFP_MLOPS_STORE`` or ``./mlops-store``."""
    return os.environ.get(DEFAULT_STORE_ENV) or DEFAULT_LOCAL_STORE


def open_store(uri: str | None = None) -> Store:
    """Open the store named by ``uri`` (default: :func:`default_store_uri`).

    A ``{namespace}`` in the URI becomes the Kubernetes namespace the code runs in
    (:func:`kfp_mlops.store_uri.resolve_store_uri`): the cluster default
    ``s3://mlpipeline/private/{namespace}/kfp-mlops`` is where a Kubeflow profile's key
    may write.
    """
    from kfp_mlops.store_uri import resolve_store_uri

    uri = resolve_store_uri(uri or default_store_uri())
    if uri.startswith("s3://"):
        return S3Store(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreError(
            f"unsupported store URI {uri!r}: use a local folder or s3://bucket/prefix"
        )
    return LocalStore(uri[len("file://"):] if uri.startswith("file://") else uri)
