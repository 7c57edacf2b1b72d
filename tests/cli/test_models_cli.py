"""`kfp-mlops models ...` against a registry in a local store, as a user would type it."""

import json

import pytest

from kfp_mlops.app.cli import main
from kfp_mlops.data.sources import load_table
from kfp_mlops.model.package import write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.storage import open_store


@pytest.fixture
def store(tmp_path):
    frame = load_table("iris")
    model, metadata = train_model(frame, TrainingSettings(
        target="target", task="classification", estimator="logistic_regression"))
    registry = Registry(open_store(str(tmp_path / "store")))
    for accuracy in (0.9, 0.95):
        metadata.metrics = {"accuracy": accuracy}
        folder = tmp_path / f"m{accuracy}"
        write_model_folder(model, metadata, folder)
        registry.publish("iris", folder, metadata, blessed=True, reason="gates passed")
    return str(tmp_path / "store")


def cli(capsys, *argv):
    code = main([*argv, "--output", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_list_show_promote_rollback(store, capsys):
    code, models = cli(capsys, "models", "list", "--store", store)
    assert code == 0 and models == [{"name": "iris", "versions": 2, "latest": 2, "production": None}]
    assert cli(capsys, "models", "promote", "iris", "1", "--stage", "production",
               "--reason", "first", "--store", store)[0] == 0
    assert cli(capsys, "models", "promote", "iris", "2", "--stage", "production",
               "--reason", "better", "--actor", "alice", "--store", store)[0] == 0
    _, shown = cli(capsys, "models", "show", "iris@production", "--store", store)
    assert shown["version"] == 2 and shown["metrics"] == {"accuracy": 0.95}
    assert shown["history"][-1]["actor"] == "alice"
    code, rolled = cli(capsys, "models", "rollback", "iris", "--reason", "canary failed",
                       "--store", store)
    assert code == 0 and rolled["version"] == 1
    _, versions = cli(capsys, "models", "list", "iris", "--store", store)
    assert [(v["version"], v["stage"]) for v in versions] == [(1, "production"), (2, "archived")]


def test_archived_needs_force_and_unknown_refs_fail_clearly(store, capsys):
    main(["models", "promote", "iris", "1", "--stage", "archived", "--reason", "old",
          "--store", store])
    capsys.readouterr()
    code, error = cli(capsys, "models", "promote", "iris", "1", "--stage", "production",
                      "--reason", "x", "--store", store)
    assert code == 1 and "--force" in error["error"]
    code, error = cli(capsys, "models", "show", "iris@9", "--store", store)
    assert code == 1 and "no version 9" in error["error"]
    code, error = cli(capsys, "models", "show", "nope", "--store", store)
    assert code == 1 and "iris" in error["error"]
