"""Store errors reach the command line as one message, never as a traceback.

A read-only local store (a real read-only bind mount where the machine allows it, else
every write failing with EROFS), and an S3 store that refuses access or is down (the
fault proxy in front of moto): each command exits 1 with a one-paragraph message that
names the problem, and ``kfp-mlops run`` fails before any task runs.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faultkit.harness import faulty_s3
from bench.faultkit.paths import make_model_folder
from bench.faultkit.proxy import Fault
from kfp_mlops.app.cli import main
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import LocalStore, open_store


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return make_model_folder(tmp_path_factory.mktemp("model"))


def publish_two(store, model_folder: Path) -> None:
    from kfp_mlops.model.package import read_metadata

    registry = Registry(store)
    for _ in range(2):
        registry.publish("iris", model_folder, read_metadata(model_folder), blessed=True)


@pytest.fixture
def read_only_store(tmp_path, model_folder, monkeypatch) -> Iterator[Path]:
    """A local store holding two versions of ``iris``, then made read-only."""
    root = tmp_path / "store"
    publish_two(LocalStore(root), model_folder)
    mounted = False
    if os.geteuid() == 0:
        bind = subprocess.run(["mount", "--bind", str(root), str(root)], capture_output=True)
        if bind.returncode == 0:
            ro = subprocess.run(
                ["mount", "-o", "remount,ro,bind", str(root)], capture_output=True
            )
            mounted = ro.returncode == 0
            if not mounted:
                subprocess.run(["umount", str(root)], capture_output=True)
    if not mounted:  # no mount here: every write fails as on a read-only file system
        import kfp_mlops.storage.local as storage

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        for name in ("replace", "link", "rename", "open"):
            monkeypatch.setattr(storage.os, name, read_only)
        monkeypatch.setattr(storage.Path, "write_bytes", read_only)
        monkeypatch.setattr(storage.tempfile, "mkdtemp", read_only)
    try:
        yield root
    finally:
        if mounted:
            subprocess.run(["umount", str(root)], capture_output=True)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_promote_on_a_read_only_store_is_one_message(read_only_store, capsys):
    code, err = run_cli(
        capsys, "models", "promote", "iris", "2", "--stage", "staging", "--reason", "t",
        "--store", str(read_only_store),
    )
    assert code == 1
    assert "kfp-mlops models: error:" in err and "Read-only file system" in err
    assert "was not recorded" in err
    code, err = run_cli(capsys, "models", "list", "iris", "--store", str(read_only_store))
    assert code == 0  # reading still works


def test_run_on_a_read_only_store_fails_before_any_task(read_only_store, tmp_path, capsys):
    code, err = run_cli(
        capsys, "run", "--data", "iris", "--store", str(read_only_store),
        "--runs-dir", str(tmp_path / "runs"),
    )
    assert code == 1
    assert "Read-only file system" in err and "No task was run; nothing was published" in err
    assert "[ok" not in err  # no task ran


@pytest.mark.slow
def test_s3_refusals_and_outages_are_one_message(model_folder, capsys):
    with faulty_s3(bucket="ml-bucket") as faulty:
        uri = faulty.uri("team")
        publish_two(open_store(uri), model_folder)
        cases = [
            (Fault("respond", times=None, status=403, code="AccessDenied"), "refused access"),
            (Fault("drop_before", times=None), "cannot reach the S3 store"),
            (Fault("respond", times=None, status=503, code="SlowDown"), "kept failing"),
        ]
        commands = [
            ["models", "promote", "iris", "2", "--stage", "staging", "--reason", "t"],
            ["models", "list", "iris"],
            ["data", "list"],
        ]
        for fault, expected in cases:
            for command in commands:
                faulty.proxy.inject(fault)
                try:
                    code, err = run_cli(capsys, *command, "--store", uri)
                finally:
                    faulty.proxy.clear()
                assert code == 1, (command, err)
                assert expected in err, (command, err)
                assert err.count("\n") == 1, err  # one paragraph
        # After the outage, the promotion that was refused is simply not there.
        assert Registry(open_store(uri)).get("iris@2").stage == "none"
