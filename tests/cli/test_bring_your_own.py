"""XGBoost and LightGBM through the CLI, as a user runs them, on data the suite never saw.

scikit-learn's bundled digits (10 classes, labels 0-9, 64 pixel columns) with XGBoost:
trained, blessed, published, served over V1 and V2 from the published folder, and
batch-scored by `kfp-mlops score`. The bundled diabetes set with LightGBM and a policy
of its own: `continuous` reuses that policy; a stricter bar refuses a challenger,
whose card is still written and printed. A metric the task does not report is a usage
error before any task runs. Real kfp.local runs, real servers.
"""

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits

from kfp_mlops.app.cli import main
from kfp_mlops.app.commands.common import EXIT_GATE_STOPPED, EXIT_USAGE
from kfp_mlops.model.package import load_model_folder

pytest.importorskip("xgboost")
pytest.importorskip("lightgbm")
pytestmark = pytest.mark.slow


def _digits(path: Path) -> pd.DataFrame:
    frame = load_digits(as_frame=True).frame
    frame.to_csv(path, index=False)
    return frame


def _json(capsys, *argv) -> tuple[int, dict]:
    code = main([*argv, "--output", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else {"err": captured.err}


def test_xgboost_trained_blessed_served_and_scored(tmp_path, capsys):
    from kfp_mlops.serving.process import running_server

    frame = _digits(tmp_path / "digits.csv")
    store, runs = str(tmp_path / "store"), str(tmp_path / "runs")
    code, summary = _json(capsys, "run", "--data", str(tmp_path / "digits.csv"),
                          "--target", "target", "--estimator", "xgboost.XGBClassifier",
                          "--params", '{"n_estimators": 40, "max_depth": 4}',
                          "--store", store, "--runs-dir", runs)
    assert code == 0, summary
    assert summary["estimator"] == "XGBClassifier" and summary["version"] == 1
    assert summary["metrics"]["accuracy"] > 0.9
    assert summary["gates"]["infra-validate"]["passed"] is True  # served by the suite image
    folder = Path(summary["model_uri"])
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["estimator_package"] == "xgboost" and meta["estimator_package_version"]
    assert meta["classes"] == [str(c) for c in sorted(range(10), key=str)]
    model, metadata = load_model_folder(folder)
    rows = frame[metadata.feature_names].iloc[:5]  # constant pixels were dropped
    expected = [str(p) for p in model.predict(rows)]

    with running_server(folder, "digits", timeout_s=90) as server:
        v1 = httpx.post(f"{server.base_url}/v1/models/digits:predict",
                        json={"instances": rows.to_numpy().tolist()}, timeout=30)
        assert v1.status_code == 200, v1.text
        assert v1.json()["predictions"] == expected
        v2 = httpx.post(f"{server.base_url}/v2/models/digits/infer", json={"inputs": [
            {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
             "data": rows.to_numpy().ravel().tolist()}]}, timeout=30)
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["data"] == expected

    frame.drop(columns=["target"]).iloc[:5].to_csv(tmp_path / "new.csv", index=False)
    code = main(["score", "digits@1", "--data", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "preds.parquet"), "--probabilities",
                 "--store", store, "--runs-dir", runs])
    assert code == 0, capsys.readouterr().err
    scored = pd.read_parquet(tmp_path / "preds.parquet")
    assert [str(p) for p in scored["prediction"]] == expected
    assert np.allclose(scored.filter(like="proba_").sum(axis=1), 1.0)


def test_metric_typo_is_a_usage_error_before_any_task(tmp_path, capsys):
    code = main(["run", "--data", "breast_cancer", "--quality-metric", "auc",
                 "--quality-threshold", "0.8", "--store", str(tmp_path / "store"),
                 "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "metric 'auc' is not one evaluation reports" in err and "roc_auc" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "store" / "datasets").exists()
    code = main(["run", "--task", "regression", "--data", "diabetes", "--blessing-policy",
                 "accuracy>=0.8", "--store", str(tmp_path / "store"),
                 "--runs-dir", str(tmp_path / "runs")])
    assert code == EXIT_USAGE
    assert "regression reports; use one of r2, rmse, mae" in capsys.readouterr().err


def test_lightgbm_policy_is_remembered_and_a_refused_model_has_its_card(tmp_path, capsys):
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame.to_csv(tmp_path / "visits.csv", index=False)
    common = ["--data", str(tmp_path / "visits.csv"), "--store", str(tmp_path / "store"),
              "--runs-dir", str(tmp_path / "runs")]
    code, summary = _json(capsys, "run", *common, "--target", "target", "--estimator", "lightgbm",
                          "--params", '{"n_estimators": 50}', "--quality-metric", "r2",
                          "--quality-threshold", "0.3")
    assert code == 0, summary
    assert summary["estimator"] == "LGBMRegressor" and summary["version"] == 1
    assert summary["blessing_policy"] == "r2>=0.3~0.01"

    # continuous without the flags: the first run's settings, said on stderr.
    code = main(["continuous", "--model-name", "visits", "--force", *common])
    captured = capsys.readouterr()
    assert "reusing visits's first training settings" in captured.err
    assert "blessing policy r2>=0.3~0.01" in captured.err and "estimator lightgbm" in captured.err
    assert "r2 >= 0.3" in captured.out  # the policy line of the summary

    # A bar the model cannot meet: refused, not published, its card written and printed.
    code = main(["run", *common, "--target", "target", "--estimator", "lightgbm",
                 "--params", '{"n_estimators": 60}', "--quality-metric", "r2",
                 "--quality-threshold", "0.99"])
    captured = capsys.readouterr()
    assert code == EXIT_GATE_STOPPED
    [card_line] = [line for line in captured.out.splitlines() if line.startswith("Card:")]
    card = Path(card_line.split()[1])
    page = card.read_text()
    assert "REFUSED by the model gate" in page and "Champion comparison" in page
    assert "Not blessed" in page
    assert "[   ok] model-card-refused" in captured.err  # the graph's name, not model-card-2
    assert "skip-step" not in captured.err
