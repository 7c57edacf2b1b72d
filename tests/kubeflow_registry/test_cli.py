"""``kfp-mlops models ... --model-registry``: both views side by side, sync, clear errors."""

from __future__ import annotations

import json

from kfp_mlops.app.cli import main
from kfp_mlops.model.kubeflow_registry import read_properties
from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import open_store


def _store_with_versions(tmp_path, model_folder, n=2):
    store = str(tmp_path / "store")
    registry = Registry(open_store(store))
    for _ in range(n):
        registry.publish("iris", model_folder, read_metadata(model_folder), blessed=True)
    return store


def test_list_shows_the_model_registry_beside_the_store(mr, tmp_path, model_folder, capsys,
                                                        monkeypatch):
    monkeypatch.delenv("KFP_MLOPS_MODEL_REGISTRY", raising=False)
    store = _store_with_versions(tmp_path, model_folder)
    assert main(["models", "list", "iris", "--store", store, "--model-registry", mr.url]) == 0
    out = capsys.readouterr().out
    assert "MODEL REGISTRY" in out and out.count("not registered") == 2

    assert main(["models", "promote", "iris", "2", "--stage", "production", "--reason", "ok",
                 "--store", store, "--model-registry", mr.url]) == 0
    capsys.readouterr()
    assert main(["models", "list", "iris", "--store", store, "--model-registry", mr.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "LIVE/none" in lines[1] and "LIVE/production" in lines[2]

    # A stage change made without the flag leaves the mirror behind, and list says so.
    monkeypatch.setenv("KFP_MLOPS_MODEL_REGISTRY", "")
    assert main(["models", "promote", "iris", "1", "--stage", "archived", "--reason", "old",
                 "--store", store]) == 0
    capsys.readouterr()
    assert main(["models", "list", "iris", "--store", store, "--model-registry", mr.url]) == 0
    assert "behind: run models sync" in capsys.readouterr().out

    assert main(["models", "sync", "iris", "--store", store, "--model-registry", mr.url,
                 "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["updated"] == [1] and report["created"] == []
    v1 = next(v for v in mr.entities["ModelVersion"].values() if v["name"] == "1")
    assert v1["state"] == "ARCHIVED" and read_properties(v1)["stage"] == "archived"


def test_sync_without_a_model_registry_says_how_to_give_one(tmp_path, model_folder, capsys,
                                                            monkeypatch):
    monkeypatch.delenv("KFP_MLOPS_MODEL_REGISTRY", raising=False)
    store = _store_with_versions(tmp_path, model_folder, 1)
    assert main(["models", "sync", "iris", "--store", store]) == 1
    err = capsys.readouterr().err
    assert "--model-registry" in err and "KFP_MLOPS_MODEL_REGISTRY" in err


def test_an_unreachable_model_registry_in_sync_is_an_error_naming_it(tmp_path, model_folder,
                                                                     capsys):
    store = _store_with_versions(tmp_path, model_folder, 1)
    assert main(["models", "sync", "iris", "--store", store,
                 "--model-registry", "http://127.0.0.1:9"]) == 1
    assert "unreachable" in capsys.readouterr().err


def test_a_malformed_model_registry_url_stops_promote_before_any_change(tmp_path, model_folder,
                                                                        capsys):
    store = _store_with_versions(tmp_path, model_folder, 1)
    assert main(["models", "promote", "iris", "1", "--stage", "staging", "--reason", "x",
                 "--store", store, "--model-registry", "model-registry:8080"]) == 1
    assert "http(s)://host:port" in capsys.readouterr().err
    assert Registry(open_store(store)).get("iris@1").stage == "none"


def test_the_model_overview_says_whether_the_mirror_is_in_sync(mr, tmp_path, model_folder,
                                                               capsys, monkeypatch):
    monkeypatch.delenv("KFP_MLOPS_MODEL_REGISTRY", raising=False)
    store = _store_with_versions(tmp_path, model_folder, 1)
    args = ["models", "list", "--store", store, "--model-registry", mr.url, "--output", "json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)[0]["model_registry"] == "not registered"
    assert main(["models", "sync", "iris", "--store", store, "--model-registry", mr.url]) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)[0]["model_registry"] == "in sync"
    Registry(open_store(store)).transition("iris", 1, "staging", reason="x", actor="me")
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)[0]["model_registry"] == "behind"
    # Unreachable: the store's view, and a warning.
    assert main(["models", "list", "iris", "--store", store,
                 "--model-registry", "http://127.0.0.1:9"]) == 0
    captured = capsys.readouterr()
    assert "showing the store only" in captured.err and "MODEL REGISTRY" not in captured.out
