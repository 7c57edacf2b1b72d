"""examples/own_training: a user's own KFP training component between the suite's gates.

Compiled with the KFP compiler, and run with kfp.local through every gate: the data
gate, the team's component, evaluate, bless, publish, the card, infra validation (the
real server) and deploy (registry promotion without a namespace). Also the contract's
helper, refused inputs named.
"""

import importlib.util
from pathlib import Path

import pytest
import yaml

from kfp_mlops.errors import DataError
from kfp_mlops.model.own import write_trained_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_training" / "pipeline.py"


def _example():
    spec = importlib.util.spec_from_file_location("own_training_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compiles(tmp_path):
    from kfp import compiler

    compiler.Compiler().compile(_example().own_training_pipeline, str(tmp_path / "p.yaml"))
    spec = yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert "comp-train-my-model" in spec["components"]
    assert {"comp-bless-model", "comp-publish", "comp-infra-validate", "comp-deploy",
            "comp-validate-data"} <= set(spec["components"])


@pytest.mark.slow
def test_runs_through_every_gate_locally(tmp_path):
    from kfp_mlops.app.local.runner import run_locally
    from kfp_mlops.model.registry import Registry
    from kfp_mlops.storage import open_store

    store = str(tmp_path / "store")
    run = run_locally(_example().own_training_pipeline,
                      {"data": "breast_cancer", "store": store}, tmp_path / "runs")
    assert run.succeeded, run.error
    gates = run.gates()
    assert gates["validate-data"]["passed"] and gates["bless-model"]["passed"]
    assert gates["infra-validate"]["passed"], gates["infra-validate"]["reason"]
    assert "deploy" in run.tasks and "model-card" in run.tasks
    [version] = Registry(open_store(store)).list_versions("breast-cancer")
    assert version.metadata.estimator == "GradientBoostingClassifier"
    assert version.metadata.metrics["accuracy"] > 0.9


def test_contract_helper_refuses_what_the_gates_cannot_use(tmp_path):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": ["a", "b", "a", "b"]})
    with pytest.raises(DataError, match="has no classes_"):
        write_trained_model(LogisticRegression(), frame[["x"]], target="y",
                            task="classification", folder=tmp_path / "m")
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    with pytest.raises(DataError, match="inputs hold the target"):
        write_trained_model(model, frame, target="y", task="classification",
                            folder=tmp_path / "m")
    metadata = write_trained_model(model, frame[["x"]], target="y", task="classification",
                                   folder=tmp_path / "m")
    assert metadata.classes == ["a", "b"] and metadata.features[0].kind == "numeric"
    assert metadata.model_sha256 and (tmp_path / "m" / "model.joblib").is_file()
