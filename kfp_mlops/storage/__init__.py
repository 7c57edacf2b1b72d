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

The interface and its errors are in :mod:`kfp_mlops.storage.base`, the backends in
:mod:`kfp_mlops.storage.local` and :mod:`kfp_mlops.storage.s3`; this module opens the
one a URI names, and is where every caller imports from.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kfp_mlops.storage.base import (
    DEFAULT_LOCAL_STORE,
    DEFAULT_STORE_ENV,
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
)
from kfp_mlops.storage.local import LocalStore

if TYPE_CHECKING:
    from kfp_mlops.storage.s3 import S3Store


def __getattr__(name: str) -> Any:
    # The S3 backend is imported when first named: its http.client and email imports
    # cost 20 ms of start-up to every command that only touches a local folder.
    if name == "S3Store":
        from kfp_mlops.storage.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_LOCAL_STORE",
    "DEFAULT_STORE_ENV",
    "MAX_CONDITIONAL_BYTES",
    "PROBE_PREFIX",
    "S3_BACKOFF_ENV",
    "S3_RETRIES_ENV",
    "S3_TIMEOUT_ENV",
    "AlreadyExistsError",
    "BucketNotFoundError",
    "ConflictError",
    "LocalStore",
    "NotFoundError",
    "PermissionDeniedError",
    "S3Store",
    "Store",
    "StoreError",
    "UnreachableError",
    "default_store_uri",
    "open_store",
]


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
        from kfp_mlops.storage.s3 import S3Store

        return S3Store(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreError(
            f"unsupported store URI {uri!r}: use a local folder or s3://bucket/prefix"
        )
    return LocalStore(uri[len("file://"):] if uri.startswith("file://") else uri)
