"""Every command's --help has a description and an example; every option says what it is.

The parser is walked as argparse builds it, so a new command or option without help
fails here.
"""

import argparse

import pytest

from kfp_mlops.cli import build_parser, main
from kfp_mlops.commands.guide import subparsers

COMMANDS = dict(subparsers(build_parser()))


def test_every_command_is_described_with_an_example():
    for path, parser in COMMANDS.items():
        assert parser.description and len(parser.description) > 30, path
        assert parser.epilog and f"kfp-mlops {path.split()[0]}" in parser.epilog, path


def test_every_option_has_help_and_shows_a_meaningful_default():
    for path, parser in COMMANDS.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, (path, action.dest)
            shown = formatter._get_help_string(action) % {"default": action.default}
            if action.option_strings and action.default is not None and action.default is not False:
                assert "default" in shown, (path, action.dest)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_help_prints_examples(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path.split(), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "  kfp-mlops " in out
