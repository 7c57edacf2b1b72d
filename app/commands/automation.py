"""``kfp-mlops submit`` and ``kfp-mlops schedule``: pipelines on a KFP cluster."""

from __future__ import annotations

import argparse

from kfp_mlops.app.commands.common import CliError, add_output, emit
from kfp_mlops.app.commands.compile import add_task_flags, task_settings


def _common(parser: argparse.ArgumentParser) -> None:
    from kfp_mlops.app.automation.submit import TOKEN_PATH_ENV
    from kfp_mlops.pipelines import PIPELINE_NAMES

    parser.add_argument("pipeline", choices=sorted(PIPELINE_NAMES), help="which pipeline")
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    parser.add_argument("--experiment", help="experiment name (created if missing)")
    add_task_flags(parser)
    parser.add_argument("--param", action="append", metavar="KEY=VALUE",
                        help="pipeline parameter (repeatable), e.g. --param data=s3://raw/x.csv")
    parser.add_argument("--namespace", help="KFP namespace (multi-user installs)")
    parser.add_argument("--service-account", metavar="NAME",
                        help="Kubernetes service account the run's pods use (KFP's run-level "
                        "service_account; default: the namespace's pipeline runner)")
    parser.add_argument("--token-file", metavar="PATH",
                        help=f"bearer token for the KFP API (default: ${TOKEN_PATH_ENV}, else "
                        "the projected token kfp.Client reads in a cluster pod, if present)")
    add_output(parser)


def kfp_target(args: argparse.Namespace):
    """The KFP target the flags name; the token file is read here, before any request.

    ``--host``, ``--namespace``, ``--experiment``, ``--token-file``, ``--service-account``.
    """
    from kfp_mlops.app.automation.submit import KfpTarget, read_token

    return KfpTarget(host=args.host, namespace=args.namespace, experiment=args.experiment,
                     token=read_token(args.token_file), service_account=args.service_account)


def submit_command(args: argparse.Namespace) -> int:
    """Upload the pipeline (or a new version of it) and start a run."""
    from kfp_mlops.app.automation.submit import SubmitError, parse_param_pairs, submit

    try:
        result = submit(
            args.pipeline, kfp_target(args), arguments=parse_param_pairs(args.param),
            settings=task_settings(args), wait=args.wait, timeout_s=args.timeout,
        )
    except SubmitError as exc:
        raise CliError(str(exc)) from None
    emit(args, result.to_dict(), f"run {result.run_id} ({result.state}): {result.url}")
    if args.wait and not result.succeeded:
        raise CliError(f"run {result.run_id} ended {result.state}: see {result.url}")
    return 0


def schedule_command(args: argparse.Namespace) -> int:
    """Create a recurring run of the pipeline."""
    from kfp_mlops.app.automation.cron import CronError
    from kfp_mlops.app.automation.submit import SubmitError, parse_param_pairs, schedule

    try:
        result = schedule(
            args.pipeline, kfp_target(args), cron=args.cron,
            arguments=parse_param_pairs(args.param), job_name=args.name,
            settings=task_settings(args), replace=args.replace,
        )
    except (SubmitError, CronError) as exc:
        raise CliError(str(exc)) from None
    emit(args, result.to_dict(),
         f"recurring run {result.name} ({result.cron}): {result.url}")
    return 0


def register(commands) -> None:
    """Add ``submit`` and ``schedule``."""
    submit = commands.add_parser("submit", help="upload a pipeline version and start a run")
    _common(submit)
    submit.add_argument("--wait", action="store_true", help="wait for the run to finish")
    submit.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait")
    submit.set_defaults(handler=submit_command)

    schedule = commands.add_parser("schedule", help="create a recurring run")
    _common(schedule)
    schedule.add_argument("--cron", required=True,
                          help="six fields, seconds first, as KFP reads them: '0 0 3 * * *'")
    schedule.add_argument("--name", help="recurring run name (default: from the pipeline)")
    schedule.add_argument("--replace", action="store_true",
                          help="replace a recurring run of the same name")
    schedule.set_defaults(handler=schedule_command)
