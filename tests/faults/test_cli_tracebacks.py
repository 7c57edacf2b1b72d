"""The CLI's last tracebacks, as one-paragraph errors that name the fix (issue 29).

Each case runs the real command (``kfp_mlops.app.cli.main``): it must return 1 with a
message on stderr and no traceback; where something could be stored first (a bad model
name, a run on a too-wide file), the store is checked to hold nothing.
"""

from __future__ import annotations

import socket

import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.data.width import wide_file_warning


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_endpoint_with_credentials_is_refused_without_echoing_them(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://admin:s3cr3t@minio.example:9000")
    code, err = run_cli(capsys, "models", "list", "--store", "s3://bucket/prefix")
    assert code == 1
    assert "AWS_ACCESS_KEY_ID" in err and "http://minio.example:9000" in err
    assert "s3cr3t" not in err and "admin" not in err


@pytest.mark.parametrize("endpoint", ["http://minio:notaport", "minio.example:9000/path",
                                      "ftp://minio:21"])
def test_endpoint_that_is_not_a_url_names_the_form(capsys, monkeypatch, endpoint):
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    code, err = run_cli(capsys, "models", "list", "--store", "s3://bucket/prefix")
    assert code == 1 and "AWS_ENDPOINT_URL" in err


def test_labels_add_on_an_empty_csv(capsys, tmp_path):
    empty = tmp_path / "labels.csv"
    empty.write_text("")
    code, err = run_cli(capsys, "labels", "add", "--model", "loans", "--data", str(empty),
                        "--store", str(tmp_path / "store"))
    assert code == 1 and "is empty" in err and "id,label" in err


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_serve_on_an_invalid_port_exits_1(capsys, tmp_path, port):
    code, err = run_cli(capsys, "serve", "loans@production", "--port", port,
                        "--store", str(tmp_path / "store"))
    assert code == 1 and "not a TCP port" in err


def test_serve_on_a_busy_port_exits_1(capsys, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = run_cli(capsys, "serve", "loans@production", "--host", "127.0.0.1",
                            "--port", str(port), "--store", str(tmp_path / "store"))
    assert code == 1 and "already in use" in err


def test_a_bad_model_name_is_refused_before_anything_is_stored(capsys, tmp_path):
    store = tmp_path / "store"
    code, err = run_cli(capsys, "run", "--data", "penguins", "--model-name", "Bad Name!",
                        "--store", str(store), "--runs-dir", str(tmp_path / "runs"))
    assert code == 1 and "invalid model name 'Bad Name!'" in err
    assert not store.exists() or not any(store.rglob("*.json"))


def test_an_empty_signing_key_is_an_error_not_signing_off(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KFP_MLOPS_SIGNING_KEY", "")
    store = tmp_path / "store"
    code, err = run_cli(capsys, "run", "--data", "penguins", "--store", str(store),
                        "--runs-dir", str(tmp_path / "runs"))
    assert code == 1 and "KFP_MLOPS_SIGNING_KEY is set but empty" in err
    assert not store.exists() or not any(store.rglob("*.json"))


def test_a_very_wide_file_is_warned_about_before_the_run(capsys, tmp_path):
    wide = tmp_path / "wide.csv"
    columns = 100_000
    with open(wide, "w") as out:
        out.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        for _ in range(3):
            out.write(",".join("1" for _ in range(columns)) + "\n")
    warning = wide_file_warning(str(wide))
    assert warning and "100,000 columns" in warning and "memory" in warning
    assert wide_file_warning(str(tmp_path / "missing.csv")) is None
    # The warning comes before anything runs (here the bad name then stops the command).
    code, err = run_cli(capsys, "run", "--data", str(wide), "--model-name", "Bad!",
                        "--store", str(tmp_path / "store"), "--runs-dir", str(tmp_path / "r"))
    assert code == 1 and err.index("100,000 columns") < err.index("invalid model name")
