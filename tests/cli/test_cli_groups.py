"""`kfp-mlops COMMAND` builds only COMMAND's group, and that parser is the whole one's."""

from __future__ import annotations

import json
import subprocess
import sys

from kfp_mlops.app.cli import COMMAND_GROUP, build_parser


def _commands(parser):
    return parser._subparsers._group_actions[0].choices  # noqa: SLF001


def test_every_command_has_its_group_and_the_same_parser() -> None:
    whole = _commands(build_parser())
    assert set(whole) == set(COMMAND_GROUP), "add the new command to COMMAND_GROUP in app/cli.py"
    for name, sub in whole.items():
        alone = _commands(build_parser(name))[name]
        assert alone.format_help() == sub.format_help(), name


def test_data_command_imports_no_other_group() -> None:
    code = ("import json, sys; from kfp_mlops.app.cli import build_parser; build_parser('data'); "
            "print(json.dumps([m for m in sys.modules if m.startswith('kfp_mlops.app.commands.')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = {m.rsplit(".", 1)[1] for m in json.loads(out)}
    assert not loaded & {"run", "models", "serving", "labels", "loop", "compile", "automation"}
