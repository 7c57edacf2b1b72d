"""Every command's --help has a description and an example; every option says what it is.

The parser is walked as argparse builds it, so a new command or option without help
fails here.
"""

import argparse

import pytest

from kfp_mlops.app.cli import build_parser, main
from kfp_mlops.app.commands.guide import subparsers

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


def test_progress_lines_start_end_and_long_tasks(tmp_path, monkeypatch):
    import io

    from kfp_mlops.app import console

    clock = iter([0.0, 0.0, 20.0, 31.0, 31.0])
    monkeypatch.setattr(console.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    log = console.RunLog(tmp_path / "log", out, total=13)
    log.write("Executing task 'train'\n")
    log.tick()  # 0 s: nothing said yet
    log.tick()  # 20 s: still running
    log.write("Task 'train' finished with status SUCCESS\n")
    log.close()
    assert out.getvalue().splitlines() == [
        "  [ 1/13] train ...",
        "  [  ...] train                      20 s, still running",
        "  [   ok] train                    31.0 s",
    ]


def test_the_suites_warnings_read_as_the_cli_s_own_lines(tmp_path, capsys):
    """Core modules log; the CLI decides how a warning reads (kfp_mlops.app.cli)."""
    import logging

    from kfp_mlops.app.cli import main

    main(["models", "list", "--store", str(tmp_path / "store")])
    logging.getLogger("kfp_mlops.storage").warning("store answered slowly; retrying")
    logging.getLogger("kfp_mlops.storage").info("not shown")
    err = capsys.readouterr().err
    assert "kfp-mlops models: WARNING: store answered slowly; retrying" in err
    assert "not shown" not in err
