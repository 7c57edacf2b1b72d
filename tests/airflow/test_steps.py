"""The Airflow DAG's step functions, without Airflow: real core code on a local store.

What the DAG test cannot show cheaply: a blessing that did not pass is refused at
publish time whatever the wiring, and the model gate's verdict file is the one the KFP
components write, so the registry records the same blessing either way.
"""

from __future__ import annotations

import json

import pytest

from kfp_mlops.app.airflow import steps
from kfp_mlops.gates import GateNotPassedError
from kfp_mlops.model.registry import Registry
from kfp_mlops.storage import open_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("store"))
    files = steps.RunFiles.for_run(store, "kfp_mlops_training", "manual__2026-01-01T00:00:00+00:00")
    ingested = steps.ingest(files, "iris")
    checked = steps.check(files, ingested, "iris")
    splits = steps.split(files, ingested, checked)
    model = steps.train(files, ingested, checked, splits, estimator="logistic_regression")
    evaluated = steps.evaluate(files, model, splits)
    return files, ingested, checked, splits, model, evaluated


def test_run_files_live_under_a_key_safe_run_prefix(trained):
    files = trained[0]
    assert files.prefix == "runs/airflow/kfp_mlops_training/manual__2026-01-01T00_00_00_00_00"
    with pytest.raises(ValueError, match="no store given; pass params.store"):
        steps.RunFiles.for_run("", "d", "r")


def test_an_unpassed_blessing_is_refused_and_nothing_is_published(trained):
    files, ingested, checked, splits, model, evaluated = trained
    # A threshold no model meets: the gate says no.
    blessed = steps.bless(files, evaluated, splits, checked, policy="accuracy>=1.01")
    assert blessed["passed"] is False and "accuracy" in blessed["reason"]

    with pytest.raises(GateNotPassedError, match="refusing to publish 'iris'"):
        steps.publish(files, model, evaluated, blessed, checked, ingested, "airflow:t/r")
    assert Registry(open_store(files.store_uri)).list_models() == []


def test_a_blessed_model_is_published_with_its_blessing_and_lineage(trained):
    files, ingested, checked, splits, model, evaluated = trained
    blessed = steps.bless(files, evaluated, splits, checked)
    verdict = json.loads(open_store(files.store_uri).get_bytes(blessed["blessing"]))
    assert verdict["passed"] is True and verdict["blessing"]["policy"] == blessed["policy"]

    published = steps.publish(files, model, evaluated, blessed, checked, ingested, "airflow:t/r")
    version = Registry(open_store(files.store_uri)).get(f"iris@{published['version']}")
    assert version.stage == "staging" and version.blessed
    assert version.metadata.run_id == "airflow:t/r"
    assert version.metadata.dataset_version == ingested["dataset_version"]
    card = steps.model_card(files, model, evaluated, blessed)
    assert card["card"].endswith("model-card.html")
