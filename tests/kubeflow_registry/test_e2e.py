"""End to end: training runs with a Model Registry, a promotion, a rollback, read back.

``kfp-mlops run --model-registry URL`` runs the training pipeline on kfp.local (the
publish and deploy tasks are child processes that talk to the Model Registry double
over HTTP); a second run (``--force-new-version``) is published and promoted to
production by its deploy step; ``kfp-mlops models rollback`` returns production to
version 1. The official ``model-registry`` 0.3.4 client then reads the registered model,
and what it reads must match ``kfp-mlops models list NAME --output json``.
"""

from __future__ import annotations

import json

import pytest

from kfp_mlops.app.cli import main
from tests.kubeflow_registry.official_client import read_registered_model

pytestmark = pytest.mark.slow


def _json(capsys, *argv):
    code = main([*argv, "--output", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_two_runs_a_rollback_and_the_official_client_agree_with_models_list(
    mr, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("model_registry")
    monkeypatch.delenv("KFP_MLOPS_MODEL_REGISTRY", raising=False)
    store, runs = str(tmp_path / "store"), str(tmp_path / "runs")
    common = ["--store", store, "--runs-dir", runs, "--model-registry", mr.url]

    first = _json(capsys, "run", "--data", "iris", *common)
    assert first["version"] == 1 and first["deploy"] == "registry-only"
    second = _json(capsys, "run", "--data", "iris", "--force-new-version", *common)
    assert second["version"] == 2 and second["deploy"] == "registry-only"
    listed = _json(capsys, "models", "list", "iris", "--store", store, "--model-registry", mr.url)
    assert [(r["version"], r["stage"]) for r in listed] == [(1, "archived"), (2, "production")]

    _json(capsys, "models", "rollback", "iris", "--reason", "e2e", "--store", store,
          "--model-registry", mr.url)
    listed = _json(capsys, "models", "list", "iris", "--store", store, "--model-registry", mr.url)
    assert [(r["version"], r["stage"]) for r in listed] == [(1, "production"), (2, "archived")]

    read = read_registered_model(mr.url, "iris")
    assert read["model"]["custom_properties"]["production_version"] == "1"
    versions = {int(v["name"]): v for v in read["versions"]}
    assert sorted(versions) == [r["version"] for r in listed]
    for row in listed:
        version = versions[row["version"]]
        props = version["custom_properties"]
        assert props["stage"] == row["stage"]
        assert version["state"] == ("ARCHIVED" if row["stage"] == "archived" else "LIVE")
        assert props["registration"] == "complete"
        assert props["blessed"] is row["blessed"]
        assert props["dataset_version"] == row["dataset_version"]
        assert props["metric.accuracy"] == pytest.approx(row["metrics"]["accuracy"])
        assert props["kfp_run_id"] and props["kfp_run_uid"]
        assert props["blessing_policy"]
        assert version["artifact"]["uri"] == row["uri"]
        assert version["artifact"]["model_format_name"] == "sklearn"
        # `models list --model-registry` shows the same, beside the store's stage.
        assert row["model_registry"]["stage"] == row["stage"]
        assert row["model_registry"]["state"] == version["state"]
        assert row["model_registry"]["artifact_uri"] == row["uri"]


def test_a_run_while_the_model_registry_is_down_publishes_and_names_the_sync_command(
    mr, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("KFP_MLOPS_MODEL_REGISTRY", raising=False)
    store, runs = str(tmp_path / "store"), str(tmp_path / "runs")
    mr.outage = 503

    code = main(["run", "--data", "iris", "--store", store, "--runs-dir", runs,
                 "--model-registry", mr.url, "--output", "json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert code == 0 and summary["version"] == 1 and summary["deploy"] == "registry-only"
    command = summary["model_registry_pending"]["command"]
    assert command.startswith("kfp-mlops models sync iris --model-registry ")
    assert command in captured.err
    assert mr.entities["RegisteredModel"] == {}

    mr.heal()
    synced = _json(capsys, "models", "sync", "iris", "--store", store, "--model-registry", mr.url)
    assert synced["created"] == [1]
    (row,) = _json(capsys, "models", "list", "iris", "--store", store,
                   "--model-registry", mr.url)
    assert row["stage"] == "production"
    assert row["model_registry"]["stage"] == "production"
    assert row["model_registry"]["registration"] == "complete"
    assert "behind" not in capsys.readouterr().err
