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


def add_runner(parser: argparse.ArgumentParser) -> None:
    """Add ``--runner subprocess|docker`` and ``--image``."""
    parser.add_argument(
        "--runner", choices=["subprocess", "docker"], default="subprocess",
        help="subprocess: each task a process of this environment (default); docker: each "
        "task in its own container from --image, through kfp.local's DockerRunner (Docker, "
        "or Podman's service via DOCKER_HOST), as uid 1000 with the task's CPU and memory "
        "limits",
    )
    parser.add_argument(
        "--image", help="with --runner docker: the kfp-mlops image (default $KFP_MLOPS_IMAGE, "
        "else kfp-mlops:0.1.0, what `docker build -t kfp-mlops:0.1.0 .` makes)",
    )


def runner_image(args: argparse.Namespace) -> str | None:
    """The image tasks run in with ``--runner docker``; None for the default runner."""
    if getattr(args, "runner", "subprocess") != "docker":
        if getattr(args, "image", None):
            raise CliError(f"--image {args.image} needs --runner docker (the default runner "
                           "runs tasks in this environment, not in an image)")
        return None
    from kfp_mlops.components.image import default_image

    # $KFP_MLOPS_IMAGE, else kfp-mlops:0.1.0, the tag of a local `docker build`.
    return args.image or default_image()


def plan_containers(
    args: argparse.Namespace, arguments: dict, inputs: tuple[str, ...] = ("data",),
    outputs: tuple[str, ...] = ("store",),
):
    """``(arguments, ContainerRun)`` for ``--runner docker``, else ``(arguments, None)``.

    ``inputs`` name the path arguments tasks read (mounted read-only), ``outputs`` the
    folders they write (mounted read-write); both are made absolute.
    """
    image = runner_image(args)
    if not image:
        return arguments, None
    from kfp_mlops.app.local.containers import plan_run

    return plan_run(image, arguments, inputs=inputs, outputs=outputs)


def task_settings(args: argparse.Namespace):
    """The pipeline's task settings: the image of ``--runner docker``, else the defaults."""
    from kfp_mlops.pipelines.cluster import TaskSettings

    image = runner_image(args)
    return TaskSettings(image=image) if image else None


def store_uri(args: argparse.Namespace) -> str:
    """The store the command should use."""
    return args.store or default_store_uri()


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print ``payload`` as JSON or ``text`` for people, as ``--output`` asks."""
    if args.output == "json":
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)
