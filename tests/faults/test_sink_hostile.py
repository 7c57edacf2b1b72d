"""Hostile requests to a running prediction log sink, beside valid traffic.

Every hostile request is answered (never a dropped connection): a 4xx when it is not an
inference logger event the sink can take, a 200 and a dead letter when it is a
well-formed event whose rows the model's input contract refuses. Valid rows all land,
once; the sink stays healthy; the window monitoring reads is read without error. Each
kind in the issue's report is here (deep nesting, a string in a numeric feature, bad
base64, ``data_base64: 5``, ``ce-time`` in year 0001, ``Content-Length: abc`` / ``-5``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench.faultkit.sinks import (
    MODEL,
    SinkProcess,
    agent_event,
    pair,
    publish_contract_model,
    raw_post,
    rows_in,
)
from kfp_mlops.live.labels import window_to_parquet
from kfp_mlops.live.logged import window_source
from kfp_mlops.live.prediction_log import REQUEST_TYPE, RESPONSE_TYPE
from kfp_mlops.storage import LocalStore

pytestmark = pytest.mark.slow

NOW = datetime.now(timezone.utc)


def _structured(envelope: dict) -> tuple[dict[str, str], bytes]:
    return {"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode()


def _envelope(**changes) -> dict:
    base = {"specversion": "1.0", "id": "s-1", "type": REQUEST_TYPE, "source": "pod",
            "inferenceservicename": MODEL, "time": NOW.isoformat(),
            "datacontenttype": "application/json"}
    base.update(changes)
    return base


def _binary(rid: str, body: bytes, **header_changes) -> tuple[dict[str, str], bytes]:
    headers, data = agent_event(REQUEST_TYPE, rid, body)
    for name, value in header_changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers, data


ROW = {"income": 1.0, "age": 3, "region": "r0"}


def refused_cases() -> dict[str, tuple[dict[str, str], bytes]]:
    """Requests a sink must answer 400 (not an inference logger event it can keep)."""
    deep = b"[" * 100_000 + b"]" * 100_000
    return {
        "deep-nesting-binary": _binary("h-deep", b'{"instances": ' + deep + b"}"),
        "deep-nesting-structured": ({"content-type": "application/cloudevents+json"},
                                    b'{"specversion": "1.0", "data": ' + deep + b"}"),
        "bad-base64": _structured(_envelope(data_base64="!!!not base64!!!")),
        "data-base64-number": _structured(_envelope(data_base64=5)),
        "ce-time-year-1": _binary("h-t1", json.dumps({"instances": [ROW]}).encode(),
                                  ce_time="0001-01-01T00:00:00Z"),
        "ce-time-year-9999": _binary("h-t2", json.dumps({"instances": [ROW]}).encode(),
                                     ce_time="9999-12-31T23:59:59Z"),
        "ce-time-garbage": _binary("h-t3", b"{}", ce_time="yesterday"),
        "not-utf8": _binary("h-u", b'{"instances": [{"region": "\xff\xfe"}]}'),
        "not-json": _binary("h-j", b"instances=1"),
        "json-array": _binary("h-a", b"[1, 2]"),
        "no-id": _binary("h-n", b"{}", ce_id=None),
        "huge-id": _binary("x" * 10_000, b"{}"),
        "id-control-chars": _binary("a\tb", b"{}"),
        "other-type": _binary("h-o", b"{}", ce_type="com.example.other"),
        "spec-0.3": _binary("h-s", b"{}", ce_specversion="0.3"),
        "path-model": _binary("h-p", b"{}", ce_inferenceservicename="../../etc"),
        "annotations-not-json": _binary("h-an", b"{}", ce_annotations="{oops"),
        "path-version": _binary("h-v", b"{}", ce_annotations='{"serving.kfp-mlops.io/'
                                'model-version": "../../x"}'),
        "no-ce-headers": ({"content-type": "application/json"}, b"{}"),
        "structured-not-object": ({"content-type": "application/cloudevents+json"}, b"[]"),
    }


def dead_letter_cases() -> dict[str, tuple[dict[str, str], bytes]]:
    """Well-formed events whose rows the model's contract refuses: kept aside, not rows."""
    def request(rid: str, body: dict, version: str = "1"):
        return agent_event(REQUEST_TYPE, rid, json.dumps(body).encode(), version=version)

    return {
        "string-in-float": request("d-str", {"instances": [{**ROW, "income": "lots"}]}),
        "missing-feature": request("d-miss", {"instances": [{"income": 1.0, "age": 3}]}),
        "bool-in-int": request("d-bool", {"instances": [{**ROW, "age": True}]}),
        "huge-int": request("d-big", {"instances": [{**ROW, "age": 10**30}]}),
        "nested-rows": request("d-nest", {"instances": [[[1.0, 2, "r"]]]}),
        "wide-record": request("d-wide", {"instances": [{**ROW, **{f"f{i}": i for i in
                                                                   range(1000)}}]}),
        "unknown-version": request("d-ver", {"instances": [ROW]}, version="99"),
        "v2-unequal": request("d-v2", {"inputs": [
            {"name": "income", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]},
            {"name": "age", "datatype": "INT64", "shape": [1], "data": [3]}]}),
    }


def test_hostile_events_beside_valid_traffic(tmp_path):
    store_dir = tmp_path / "store"
    publish_contract_model(LocalStore(store_dir), tmp_path)
    sink = SinkProcess(str(store_dir), tmp_path / "spool", "--max-rows", "7",
                       "--max-age", "0.3", "--pending", "0.5").start()
    valid = 0
    answers: dict[str, int | None] = {}

    def some_valid(n: int = 3) -> None:
        nonlocal valid
        for _ in range(n):
            for headers, body in pair(valid):
                assert sink.post(headers, body).status_code == 200
            valid += 1

    try:
        raw = {
            "content-length-abc": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc",
            "content-length-negative": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5",
            "content-length-huge": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999",
            "content-length-twice": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                    b"Content-Length: 3",
            "no-content-length": b"POST / HTTP/1.1\r\nHost: x",
            "chunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked",
            "short-body": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100",
        }
        for name, head in raw.items():
            answers[name] = raw_post(sink.port, head, b"{}")
            some_valid(1)
        for name, (headers, body) in refused_cases().items():
            answers[name] = sink.post(headers, body).status_code
            some_valid(1)
            assert sink.health() == 200, name
        for name, (headers, body) in dead_letter_cases().items():
            answers[name] = sink.post(headers, body).status_code
            some_valid(1)
        # A response the model could never have sent: a number where classes are strings.
        rid = "d-pred"
        answers["prediction-type"] = sink.post(*agent_event(
            REQUEST_TYPE, rid, json.dumps({"instances": [ROW]}).encode())).status_code
        sink.post(*agent_event(RESPONSE_TYPE, rid, b'{"predictions": [3.5]}'))
        some_valid(5)
        assert sink.health() == 200
        assert sink.metric("refused_requests_total") == len(raw) + len(refused_cases())
    finally:
        sink.stop()
    expected = {name: 400 for name in [*raw, *refused_cases()]}
    expected.update({"content-length-huge": 413, "no-content-length": 411, "chunked": 411})
    expected.update({name: 200 for name in [*dead_letter_cases(), "prediction-type"]})
    assert answers == expected
    log_text = sink.log.read_text()
    assert "Traceback" not in log_text and "RecursionError" not in log_text

    rows = rows_in(store_dir)
    assert sorted(rows["_request_id"]) == [f"req-{i:05d}" for i in range(valid)]  # each once
    assert rows["income"].dtype == "float64" and rows["age"].dtype == "int64"
    assert rows["region"].dtype == object and rows["_prediction"].tolist() == ["yes"] * valid
    dead = pd.concat([pq.read_table(f).to_pandas() for f in
                      (store_dir / "predictions" / "_dead-letters").rglob("*.parquet")])
    assert sorted(dead["_request_id"]) == sorted(
        ["d-str", "d-miss", "d-bool", "d-big", "d-nest", "d-wide", "d-ver", "d-v2", "d-pred"])
    assert all(dead["_reason"].str.len() > 10)
    # What `kfp-mlops monitor --window` reads: the window as one file, with its labels.
    out = tmp_path / "window.parquet"
    count, _ = window_to_parquet(window_source(MODEL, window="30d", store=str(store_dir)), out)
    assert count == valid and "client_key" in pq.read_table(out).column_names


def test_a_flood_of_idle_connections_is_bounded(tmp_path):
    """Connections that never send a request hold a thread each: past the cap, 503."""
    import socket

    from kfp_mlops.live.log_sink import MAX_CONNECTIONS

    store_dir = tmp_path / "store"
    publish_contract_model(LocalStore(store_dir), tmp_path)
    sink = SinkProcess(str(store_dir), tmp_path / "spool").start()
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS + 20):
            idle.append(socket.create_connection(("127.0.0.1", sink.port)))
        extra = idle[-1]
        extra.settimeout(10)
        assert extra.recv(100).startswith(b"HTTP/1.1 503")
        for conn in idle:
            conn.close()
        idle = []
        for event in pair(0):  # the idle ones gone, events are taken again
            assert sink.post(*event).status_code == 200
    finally:
        for conn in idle:
            conn.close()
        sink.stop()
    assert sorted(rows_in(store_dir)["_request_id"]) == ["req-00000"]
