"""The S3 backend: a bucket and prefix on any S3-compatible server, through ``minio``.

S3 settings come from the variables KServe's storage initializer reads, so one
Kubernetes Secret serves both training and serving: ``AWS_ENDPOINT_URL`` (e.g.
``http://minio-service.kubeflow:9000``; default AWS S3), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``S3_VERIFY_SSL`` (``0`` to skip
certificate checks).

The minio client's errors become the typed store errors of :mod:`kfp_mlops.storage.base`
from error codes, HTTP statuses and exception types, never from message text. The
atomic create-if-absent is a ``PUT`` with ``If-None-Match: *``.

S3 requests are retried with bounded exponential backoff by the HTTP client (urllib3:
connection errors, timeouts, 500/502/503/504 answers; idempotent methods only), and a
read whose body breaks off is retried here. ``KFP_MLOPS_S3_TIMEOUT`` (seconds, default
300), ``KFP_MLOPS_S3_RETRIES`` (default 5) and ``KFP_MLOPS_S3_BACKOFF`` (seconds, default
0.2, doubled per retry) tune that.
"""

from __future__ import annotations

import http.client
import io
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlparse

from kfp_mlops.storage.base import (
    MAX_CONDITIONAL_BYTES,
    PROBE_PREFIX,
    S3_BACKOFF_ENV,
    S3_RETRIES_ENV,
    S3_TIMEOUT_ENV,
    AlreadyExistsError,
    BucketNotFoundError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Store,
    StoreError,
    UnreachableError,
    _files_to_publish,
)

# The package's name, as before the split, so log filters keep matching.
_log = logging.getLogger("kfp_mlops.storage")
T = TypeVar("T")

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
