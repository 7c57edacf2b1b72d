"""Conventions every command follows: --store, --output text|json, clear errors."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.storage import DEFAULT_LOCAL_STORE, DEFAULT_STORE_ENV, default_store_uri

# Exit statuses (README "Exit statuses"): 0 published, or nothing to do; 1 an error
# (bad input, a failed task, an unreachable store); 3 a gate stopped the run (argparse
# uses 2 for usage errors), so a CI job that runs `kfp-mlops run` fails when nothing
# was trained or released.
EXIT_GATE_STOPPED = 3
EXIT_USAGE = 2  # as argparse: a flag's value the command cannot use, found before any work


class CliError(KfpMlopsError):
    """An error the user can fix; printed as one paragraph, exit status 1."""


class UsageError(CliError):
    """A flag value the command cannot use (e.g. a metric the task lacks): exit status 2."""


def add_output(parser: argparse.ArgumentParser) -> None:
    """Add ``--output text|json``."""
    parser.add_argument(
        "--output", choices=["text", "json"], default="text",
        help="text for people (default), json for scripts (one object on stdout)",
    )


def add_store(parser: argparse.ArgumentParser) -> None:
    """Add ``--store`` with the documented default."""
    parser.add_argument(
        "--store", default=None,
        help=f"store URI: a local folder or s3://bucket/prefix (default: ${DEFAULT_STORE_ENV}, "
        f"else {DEFAULT_LOCAL_STORE}); S3 uses AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, S3_VERIFY_SSL",
    )


def store_uri(args: argparse.Namespace) -> str:
    """The store the command should use."""
    return args.store or default_store_uri()


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print ``payload`` as JSON or ``text`` for people, as ``--output`` asks."""
    if args.output == "json":
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)
