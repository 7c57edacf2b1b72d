"""The loop on live traffic, locally: serve -> traffic -> logs -> labels -> monitor -> retrain.

A data set the suite was not built on (scikit-learn's ``make_classification``, two
worlds drawn with different seeds: world B's features are shifted and its labels follow
another rule). Version 1 is trained on world A; ``kfp-mlops serve --log-to`` answers
replayed traffic, half of it from world B; labels for part of the rows come later; the
monitor decides from the logs alone, and the continuous pipeline retrains on the
labelled log window and promotes the new version.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from kfp_mlops.app.cli import main
from kfp_mlops.serving.process import free_port

pytestmark = pytest.mark.slow

FEATURES = [f"f{i}" for i in range(6)]
TARGET = "outcome"


def world(seed: int, rows: int, shift: float) -> pd.DataFrame:
    x, y = make_classification(n_samples=rows, n_features=6, n_informative=4, n_redundant=0,
                               class_sep=1.5, random_state=seed)
    frame = pd.DataFrame(x + shift, columns=FEATURES)
    frame[TARGET] = y
    return frame


def cli_json(capsys, *argv):
    code = main([*argv, "--output", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def test_loop_retrains_from_the_prediction_log_alone(tmp_path, capsys):
    store, runs = str(tmp_path / "store"), str(tmp_path / "runs")
    world_a = world(seed=11, rows=1400, shift=0.0)
    world_b = world(seed=23, rows=400, shift=2.5)
    world_a.iloc[:600].to_csv(tmp_path / "train.csv", index=False)
    common = ["--model-name", "live", "--store", store, "--runs-dir", runs]

    code, first, _ = cli_json(capsys, "run", "--data", str(tmp_path / "train.csv"),
                              "--target", TARGET, *common)
    assert code == 0 and first["version"] == 1, first

    # Traffic the suite has not seen: 400 rows of world A, then 400 of world B.
    traffic = pd.concat([world_a.iloc[1000:1400], world_b], ignore_index=True)
    port = free_port()
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kfp_mlops.app.cli import main; "
         "sys.exit(main())", "serve", "live@production", "--port", str(port),
         "--store", store, "--log-to"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "wb"), cwd=tmp_path,
        # As local tasks do (app/local/runner.py): on a busy shared machine spinning OpenMP
        # waits made each 4-row prediction take 0.7-0.9 s instead of 60-70 ms.
        env={**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/v2/models/live/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        for start in range(0, len(traffic), 4):  # 4 rows a request, the client's own id
            rows = traffic.iloc[start:start + 4][FEATURES]
            answer = httpx.post(f"{base}/v1/models/live:predict",
                                json={"instances": rows.to_dict("records")},
                                headers={"ce-id": f"req-{start // 4:04d}"}, timeout=30)
            assert answer.status_code == 200, answer.text
    finally:
        server.send_signal(signal.SIGTERM)  # the last micro-batch is written at exit
        assert server.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()
    ended = datetime.now(timezone.utc) + timedelta(seconds=1)
    window = ["--since", started.isoformat(), "--until", ended.isoformat()]

    # Ground truth arrives later for 60 % of the rows, from both halves.
    ids = [f"req-{i // 4:04d}/{i % 4}" for i in range(len(traffic))]
    labelled = np.random.default_rng(5).random(len(traffic)) < 0.6
    labels = pd.DataFrame({"id": ids, "label": traffic[TARGET]})[labelled]
    labels.to_csv(tmp_path / "labels.csv", index=False)
    code, added, _ = cli_json(capsys, "labels", "add", "--model", "live", "--data",
                              str(tmp_path / "labels.csv"), "--store", store)
    assert code == 0 and added["new"] and added["rows"] == labelled.sum(), added

    code, watched, _ = cli_json(capsys, "monitor", "--model", "live", *window,
                                "--store", store, "--runs-dir", runs)
    assert code == 0, watched
    decision = watched["monitor"]
    assert decision["retrain"] is True and decision["drift"] is True, decision
    assert f"prediction log: {len(traffic)} rows, {labelled.sum()} labelled" in \
        decision["reason"], decision["reason"]
    assert "prediction drift: yes" in decision["reason"]
    assert "data quality" not in decision["reason"]  # unlabelled is not missing data
    report = next(path for path in watched["reports"].values() if path.endswith(".html"))
    assert f"{len(traffic)} rows, {labelled.sum()} labelled" in open(report).read()

    code, cont, _ = cli_json(capsys, "continuous", *common, "--target", TARGET, *window)
    assert code == 0, cont
    assert cont["monitor"]["retrain"] is True and cont["stopped_by"] is None, cont
    assert cont["version"] == 2, cont
    code, versions, _ = cli_json(capsys, "models", "list", "live", "--store", store)
    assert [(v["version"], v["stage"]) for v in versions] == [(1, "archived"),
                                                              (2, "production")]
    assert cont["data"]["dataset_version"], cont["data"]
    # Trained on the labelled log rows only, and better than version 1 on the same ones.
    assert cont["data"]["rows"] == labelled.sum(), cont["data"]
    # `labels join` on the same window is that same, content-addressed dataset version.
    code, joined, _ = cli_json(capsys, "labels", "join", "--model", "live", *window,
                               "--store", store)
    assert code == 0 and joined["new"] is False, joined
    assert joined["dataset_version"] == cont["data"]["dataset_version"], joined
    blessing = json.loads((tmp_path / "runs" / cont["run_dir"] / "bless-model" / "blessing")
                          .read_text())["blessing"]
    accuracy = next(c for c in blessing["comparisons"] if c["metric"] == "accuracy")
    assert blessing["champion_version"] == 1
    assert accuracy["challenger"] > accuracy["champion"] + 0.05, accuracy
