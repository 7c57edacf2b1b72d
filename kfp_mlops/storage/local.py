"""The local backend: a store that is a folder on the local disk.

A publication is built in a folder beside its target and renamed into place whole, so a
losing publisher leaves nothing behind (:attr:`LocalStore.exclusive_publish`); the
atomic create-if-absent is an exclusive hard link. ``OSError`` becomes the typed store
errors of :mod:`kfp_mlops.storage.base` from its errno and type.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from kfp_mlops.storage.base import (
    PROBE_PREFIX,
    AlreadyExistsError,
    NotFoundError,
    PermissionDeniedError,
    Store,
    StoreError,
    _files_to_publish,
)

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
