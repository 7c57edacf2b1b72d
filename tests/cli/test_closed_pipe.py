"""`kfp-mlops ... | head`: a reader that goes away ends the command quietly, no traceback.

The child's stdout is a pipe whose read end is already closed, so its first write
fails with EPIPE every time (what `| head -4` does once head has its lines).
"""

import os
import subprocess
import sys

import pytest

from kfp_mlops.data.ingest import ingest_to_parquet
from kfp_mlops.data.sources import load_table
from kfp_mlops.model.package import write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.storage import open_store


@pytest.fixture
def store(tmp_path):
    model, metadata = train_model(load_table("iris"), TrainingSettings(
        target="target", task="classification", estimator="logistic_regression"))
    write_model_folder(model, metadata, tmp_path / "m")
    Registry(open_store(str(tmp_path / "store"))).publish(
        "iris", tmp_path / "m", metadata, stage="production", blessed=True)
    ingest_to_parquet("iris", tmp_path / "iris.parquet", str(tmp_path / "store"))
    return str(tmp_path / "store")


@pytest.mark.parametrize("argv", [["models", "show", "iris"], ["data", "list"],
                                  ["models", "list"]])
def test_closed_pipe_is_not_a_traceback(store, argv):
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "kfp_mlops.app.cli", *argv,
                               "--store", store], stdout=write, stderr=subprocess.PIPE,
                              timeout=120)
    finally:
        os.close(write)
    err = done.stderr.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert done.returncode == 0
