"""The moto S3 server of the tests, kept in ``bench/s3server.py`` (benches start it too).

Tests import it from here or from ``bench.s3server``; tests depend on bench, never the
reverse.
"""

from bench.s3server import S3Server, s3_server

__all__ = ["S3Server", "s3_server"]
