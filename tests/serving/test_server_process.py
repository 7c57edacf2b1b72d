"""The server process wrapper leaves nothing behind when it stops."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kfp_mlops.serving.process import ServerProcess


@pytest.mark.parametrize("graceful", [True, False])
@pytest.mark.parametrize("exited_first", [False, True])
def test_stop_removes_the_log_folder(tmp_path, graceful, exited_first):
    folder = tmp_path / "kfp-mlops-serve-x"
    folder.mkdir()
    (folder / "server.log").write_text("started\n")
    code = "pass" if exited_first else "import time; time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", code])
    if exited_first:
        process.wait(timeout=30)
    server = ServerProcess(process, "http://127.0.0.1:1", "m", folder / "server.log")
    assert server.log_tail() == "started\n"
    server.stop(graceful=graceful)
    assert process.poll() is not None
    assert not folder.exists()
