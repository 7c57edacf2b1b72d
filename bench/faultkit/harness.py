"""moto's S3 server behind the fault proxy, with the client tuned for quick faults.

:func:`faulty_s3` starts both, points ``AWS_ENDPOINT_URL`` at the proxy and shortens the
client's timeout and retries (``KFP_MLOPS_S3_TIMEOUT``, ``KFP_MLOPS_S3_RETRIES``,
``KFP_MLOPS_S3_BACKOFF``) so an outage fails in well under a second; everything is
restored on exit. Used by ``tests/faults/`` and ``bench/faults.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.faultkit.proxy import FaultProxy
from bench.s3server import S3Server, s3_server

# The client gives up on an answer after TIMEOUT s and retries RETRIES times, BACKOFF s
# apart (doubling); a delayed answer (DELAY s) always outlasts the timeout.
TIMEOUT = 0.5
RETRIES = 2
BACKOFF = 0.01
DELAY = 0.8
CLIENT_ENV = {
    "KFP_MLOPS_S3_TIMEOUT": str(TIMEOUT),
    "KFP_MLOPS_S3_RETRIES": str(RETRIES),
    "KFP_MLOPS_S3_BACKOFF": str(BACKOFF),
}


@dataclass
class FaultyS3:
    """The S3 server, the proxy in front of it, and the bucket."""

    server: S3Server
    proxy: FaultProxy

    def uri(self, prefix: str = "") -> str:
        """``s3://bucket/prefix`` (reached through the proxy)."""
        return self.server.uri(prefix)


@contextmanager
def faulty_s3(bucket: str = "ml-bucket") -> Iterator[FaultyS3]:
    """moto on loopback, the fault proxy before it; the AWS_* variables point at the proxy."""
    saved = {name: os.environ.get(name) for name in [*CLIENT_ENV, "AWS_ENDPOINT_URL"]}
    with s3_server(bucket=bucket) as server:
        proxy = FaultProxy(server.endpoint).start()
        try:
            os.environ.update(CLIENT_ENV, AWS_ENDPOINT_URL=proxy.endpoint)
            yield FaultyS3(server, proxy)
        finally:
            proxy.stop()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
