"""Shared fixtures: a real S3-compatible server on 127.0.0.1 and bundled-data frames."""

from __future__ import annotations

import pytest

from tests.s3server import s3_server


@pytest.fixture
def s3():
    """moto's standalone S3 server with a fresh bucket; AWS_* variables point at it."""
    with s3_server() as server:
        yield server
