"""The ``kfp-mlops`` command line.

Conventions every command follows: ``--store`` (default ``$KFP_MLOPS_STORE``, else
``./mlops-store``) where the store is read or written, ``--output text|json``, exit
status 0 on success, 3 when a gate stopped a pipeline run, 2 for a flag value the
command cannot use (argparse's own usage errors too), 1 with a one-paragraph message on
any other error (``kfp_mlops.app.commands.common``). A closed pipe (``| head``) ends the
command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable

from kfp_mlops.app.commands.common import EXIT_USAGE, UsageError
from kfp_mlops.app.commands.guide import apply_guide
from kfp_mlops.errors import KfpMlopsError

# The modules of kfp_mlops.app.commands that register the commands, in --help's order.
COMMAND_GROUPS = ["run", "data", "models", "serving", "labels", "loop", "compile", "automation"]
# Each top-level command's module: `kfp-mlops data drift ...` imports and builds its own
# group only (the other groups' imports cost 0.1-0.2 s CPU a run). Without a known
# command (--help, --version, a typo) every group is built, so help and errors are whole.
COMMAND_GROUP = {
    "run": "run", "data": "data", "models": "models", "serve": "serving", "score": "serving",
    "labels": "labels", "monitor": "loop", "continuous": "loop", "compile": "compile",
    "submit": "automation", "schedule": "automation",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser for every command, or for ``command``'s group only."""
    from kfp_mlops import __version__

    parser = argparse.ArgumentParser(
        prog="kfp-mlops",
        description="Kubeflow Pipelines components for the scikit-learn ML life cycle.",
    )
    parser.add_argument("--version", action="version", version=f"kfp-mlops {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = [COMMAND_GROUP[command]] if command in COMMAND_GROUP else COMMAND_GROUPS
    for group in groups:
        importlib.import_module(f"kfp_mlops.app.commands.{group}").register(commands)
    apply_guide(parser)
    return parser


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record comes (tests and callers swap it)."""

    @property  # type: ignore[override]
    def stream(self):
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_to_stderr(command: str) -> None:
    """Show the suite's warnings (``kfp_mlops.*`` loggers) as the CLI's own lines.

    The core and components log; only the application decides how that reads. Task
    processes of a local run log through KFP's executor format into the run log instead.
    """
    log = logging.getLogger("kfp_mlops")
    handler = next((h for h in log.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setLevel(logging.WARNING)
        log.addHandler(handler)
    handler.setFormatter(logging.Formatter(f"kfp-mlops {command}: %(levelname)s: %(message)s"))


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status (tests and callers call this in-process)."""
    return _run(argv)[0]


def console_main() -> None:
    """The ``kfp-mlops`` console script: run one command, then end the process.

    After a command whose parser sets ``ends_fast`` (``data drift``) succeeds, the
    process flushes its output and logs and ends with ``os._exit``, skipping the
    interpreter's teardown: freeing every module, array and sample one object at a time
    took 45-60 ms after a 1M-row drift, 5-8 % of the command (``docs/performance.md``).
    Such a command has nothing left to do at exit: no child process, thread, temporary
    file or open file of its own. Every other command, and every error, ends as usual.
    """
    status, args = _run(sys.argv[1:])
    if status == 0 and getattr(args, "ends_fast", False):
        logging.shutdown()  # what the interpreter's exit would have flushed
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # the reader went away: quiet, as for every command
            pass
        os._exit(0)
    sys.exit(status)


def _run(argv: list[str] | None) -> tuple[int, argparse.Namespace]:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    _log_to_stderr(args.command)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args), args
    except KfpMlopsError as exc:  # every error a user can fix (kfp_mlops.errors)
        message = str(exc)
        print(f"kfp-mlops {args.command}: error: {message}", file=sys.stderr)
        if getattr(args, "output", "text") == "json":
            print(json.dumps({"error": message}))
        return (EXIT_USAGE if isinstance(exc, UsageError) else 1), args
    except KeyboardInterrupt:
        return 130, args
    except BrokenPipeError:
        # The reader went away (`kfp-mlops models show m | head -4`): not an error of
        # ours. Point stdout at /dev/null so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0, args


if __name__ == "__main__":
    console_main()
