"""The store interface: what every backend offers, and the errors they share.

Keys are ``/``-separated relative paths (``models/wine/3/model.joblib``). Readers never
see half a publication: :meth:`Store.publish_dir` writes every file of a folder and then
its *commit file* last, and readers only trust a folder whose commit file exists.

Errors are typed, the same from both backends, and decided from error codes, HTTP
statuses and exception types, never from message text (the backends' modules map
theirs). :meth:`Store.create_if_absent` is the one atomic create-if-absent that the
registry's claims and the schemas' commit files rely on.
"""

from __future__ import annotations

import builtins
import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

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
