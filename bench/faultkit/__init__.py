"""Fault injection against a real S3 server: shared by ``bench/faults.py`` and tests/faults.

``proxy`` (a loopback proxy that drops, delays or fails S3 requests), ``harness`` (moto's
server behind it, the client tuned for quick faults) and ``paths`` (every publish path of
the store, failed at each of its requests in turn, and the rules that judge it).
"""
