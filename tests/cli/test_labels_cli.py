"""``kfp-mlops labels`` and the window flags of ``monitor``: what a user types, what it says."""

from __future__ import annotations

import json

from kfp_mlops.app.cli import main


def test_labels_add_stores_once_and_says_where(tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("id,label\nreq-1,yes\nreq-2/0,no\n")
    argv = ["labels", "add", "--model", "loans", "--data", str(tmp_path / "labels.csv"),
            "--store", str(tmp_path / "store"), "--output", "json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["rows"] == 2 and first["new"] and "/labels/loans/" in first["stored_as"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["new"] is False


def test_labels_for_a_bad_model_name_or_file_exit_1_with_the_fix(tmp_path, capsys):
    assert main(["labels", "add", "--model", "../x", "--data", "none.csv",
                 "--store", str(tmp_path)]) == 1
    assert "cannot name a prediction log folder" in capsys.readouterr().err
    assert main(["labels", "add", "--model", "loans", "--data", str(tmp_path / "no.csv"),
                 "--store", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_monitor_takes_a_file_or_a_window_not_both(tmp_path, capsys):
    assert main(["monitor", "--model", "loans", "--data", "b.csv", "--window", "7d",
                 "--store", str(tmp_path)]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["monitor", "--model", "loans", "--store", str(tmp_path)]) == 1
    assert "--since/--until or --window" in capsys.readouterr().err
    assert main(["monitor", "--model", "loans", "--window", "soon",
                 "--store", str(tmp_path)]) == 1
    assert "'soon' is not a duration" in capsys.readouterr().err


def test_labels_join_without_logs_names_the_window(tmp_path, capsys):
    assert main(["labels", "join", "--model", "loans", "--since", "2026-11-01",
                 "--until", "2026-11-02", "--store", str(tmp_path / "store")]) == 1
    err = capsys.readouterr().err
    assert "no predictions of loans from 2026-11-01T00:00:00+00:00" in err, err
