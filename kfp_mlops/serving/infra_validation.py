"""Infra validation: serve the candidate for real and check it answers like the model.

The gate starts ``python -m kfp_mlops.serving`` on 127.0.0.1 (the same entry point as
the cluster runtime), waits for the model to be ready, sends held-out rows through V1
and V2, and blesses the candidate only if every request succeeds and the served
predictions equal the in-process ``model.predict``. The server is always stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kfp_mlops.model.features import model_inputs
from kfp_mlops.model.package import ModelMetadata, load_model_folder
from kfp_mlops.serving.payloads import PROBABILITIES, encode_v1, encode_v2
from kfp_mlops.serving.process import ServerProcess, ServerStartError, start_server


@dataclass
class InfraValidationResult:
    """The serving gate's verdict: ``passed`` plus a human-readable ``reason``."""

    passed: bool
    reason: str
    rows: int = 0
    requests: int = 0
    mismatches: dict[str, int] = field(default_factory=dict)
    startup_s: float | None = None
    server_log_tail: str = ""


def _mismatches(task: str, served: list[Any], expected: np.ndarray) -> int:
    if len(served) != len(expected):
        return max(len(served), len(expected))
    if task == "regression":
        got = np.asarray(served, dtype=np.float64)
        return int(np.sum(~np.isclose(got, expected.astype(np.float64))))
    return sum(1 for a, b in zip(served, expected.tolist(), strict=True) if a != b)


def _check_protocols(
    server: ServerProcess,
    frame: pd.DataFrame,
    metadata: ModelMetadata,
    expected: np.ndarray,
    expected_proba: np.ndarray | None,
    request_rows: int,
) -> tuple[int, dict[str, int], str | None]:
    """Send ``frame`` through V1 rows, V1 records and V2; count mismatches per route."""
    import httpx

    base = server.base_url
    name = server.model_name
    counts = {"v1": 0, "v1_records": 0, "v2": 0, "probabilities": 0}
    requests = 0
    with_proba = expected_proba is not None
    with httpx.Client(timeout=30.0) as client:
        for start in range(0, len(frame), request_rows):
            chunk = frame.iloc[start : start + request_rows]
            want = expected[start : start + request_rows]
            calls = {
                "v1": (
                    f"{base}/v1/models/{name}:predict",
                    encode_v1(chunk, metadata.features, return_probabilities=with_proba),
                ),
                "v1_records": (
                    f"{base}/v1/models/{name}:predict",
                    encode_v1(chunk, metadata.features, records=True),
                ),
                "v2": (
                    f"{base}/v2/models/{name}/infer",
                    encode_v2(chunk, metadata.features, with_probabilities=with_proba),
                ),
            }
            for route, (url, body) in calls.items():
                requests += 1
                try:
                    response = client.post(url, json=body)
                except httpx.HTTPError as exc:
                    return requests, counts, f"{route} request failed: {exc!r}"
                if response.status_code != 200:
                    return (
                        requests,
                        counts,
                        (
                            f"{route} request for rows {start}..{start + len(chunk) - 1} got HTTP "
                            f"{response.status_code}: {response.text[:500]}"
                        ),
                    )
                served, proba = _read_response(route, response.json())
                counts[route] += _mismatches(metadata.task, served, want)
                if with_proba and proba is not None:
                    assert expected_proba is not None
                    got = np.asarray(proba, dtype=np.float64).reshape(len(chunk), -1)
                    if not np.allclose(got, expected_proba[start : start + request_rows]):
                        counts["probabilities"] += 1
    return requests, counts, None


def _read_response(route: str, body: dict[str, Any]) -> tuple[list[Any], Any]:
    if route.startswith("v1"):
        return body["predictions"], body.get(PROBABILITIES)
    outputs = {o["name"]: o for o in body["outputs"]}
    proba = outputs.get(PROBABILITIES)
    return outputs["predictions"]["data"], proba["data"] if proba else None


def validate_serving(
    model_dir: str | Path,
    rows: pd.DataFrame,
    timeout_s: float = 120.0,
    model_name: str = "candidate",
    request_rows: int = 100,
    env: Mapping[str, str] | None = None,
    server: ServerProcess | None = None,
) -> InfraValidationResult:
    """Bless ``model_dir`` only if the real server answers ``rows`` exactly like the model.

    Classes must match exactly, regression values within ``np.isclose``; classifier
    probabilities are compared too. ``rows`` must hold every feature column (extra
    columns such as the target are ignored). Never raises for a bad candidate: the
    verdict and its reason are in the result. ``server``: one the caller already
    started on ``model_dir`` with :func:`~kfp_mlops.serving.process.start_server`;
    it is stopped here too.
    """
    if rows.empty:
        if server is not None:
            server.stop(graceful=False)
        return InfraValidationResult(False, "no rows given; pass held-out rows to send")
    # The server imports KServe and loads the model in its own process (seconds); the
    # expected answers are computed here meanwhile.
    server = server or start_server(model_dir, model_name, env)
    try:
        try:
            model, metadata = load_model_folder(model_dir)
        except Exception as exc:  # any load failure is a refusal, with its message
            return InfraValidationResult(False, f"model folder cannot be loaded: {exc}")
        missing = [n for n in metadata.feature_names if n not in rows.columns]
        if missing:
            return InfraValidationResult(
                False, f"rows lack feature columns {missing}; pass rows with every feature"
            )
        # The rows as training fed them to the model (missing categories as NaN, numbers
        # as float64): the reference for what the server must reproduce from JSON.
        frame = model_inputs(rows, metadata).reset_index(drop=True)
        expected = np.asarray(model.predict(frame))
        expected_proba = (
            np.asarray(model.predict_proba(frame), dtype=np.float64)
            if metadata.task == "classification" and hasattr(model, "predict_proba")
            else None
        )
        try:
            server.wait_ready(timeout_s)
        except ServerStartError as exc:
            return InfraValidationResult(False, f"model server did not start: {exc}")
        requests, counts, failure = _check_protocols(
            server, frame, metadata, expected, expected_proba, request_rows
        )
        tail = server.log_tail()
    finally:
        # The validation server keeps no state worth a graceful shutdown.
        server.stop(graceful=False)
    result = InfraValidationResult(
        False,
        "",
        rows=len(frame),
        requests=requests,
        mismatches=counts,
        startup_s=server.startup_s,
        server_log_tail=tail,
    )
    if failure:
        result.reason = f"serving failed: {failure}"
    elif any(counts.values()):
        bad = {k: v for k, v in counts.items() if v}
        result.reason = (
            f"served predictions differ from model.predict on {len(frame)} rows {bad}; "
            "the model is not deterministic across processes or the serving image differs"
        )
    else:
        result.passed = True
        result.reason = (
            f"{len(frame)} rows served over V1 (rows, records) and V2 in {requests} requests; "
            "all predictions equal model.predict"
        )
    return result
