"""The prediction log: KServe logger CloudEvents over HTTP into the store, exactly once.

The events are built with the CloudEvents SDK with the attributes KServe's agent sets
(``pkg/logger/worker.go``: binary mode, the same ``ce-id`` on request and response, the
request's content type, the ``inferenceservicename``/``namespace``/``component``/
``endpoint``/``metadata``/``annotations`` extensions) from the bodies a real
``ModelServer`` received and answered, and posted to the sink running as its own process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from kfp_mlops.data.log_columns import LOGGED_AT, PREDICTION, REQUEST_ID, ROW_ID
from kfp_mlops.live.prediction_log import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    VERSION_ANNOTATION,
    CloudEventError,
    InferenceEvent,
    PredictionLog,
    parse_cloudevent,
)
from kfp_mlops.model.package import read_metadata
from kfp_mlops.model.registry import Registry
from kfp_mlops.serving.payloads import encode_v1, encode_v2
from kfp_mlops.serving.process import free_port, running_server
from kfp_mlops.storage import LocalStore

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)


def agent_event(kind: str, event_id: str, body: bytes, when: datetime, *, model: str,
                version: str = "1", structured: bool = False) -> tuple[dict, bytes]:
    """One logger event as KServe's agent sends it (binary mode unless ``structured``)."""
    attributes = {
        "id": event_id, "type": kind, "source": f"{model}-predictor-7d9f-abcde",
        "specversion": "1.0",
        "time": when.isoformat().replace("+00:00", "Z"),
        "recordedtime": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "inferenceservicename": model, "namespace": "kubeflow-user-example-com",
        "component": "predictor", "endpoint": "default", "metadata": "{}",
        "annotations": json.dumps({VERSION_ANNOTATION: version}),
        "datacontenttype": "application/json",
    }
    event = CloudEvent(attributes, body)
    if structured:
        headers, data = to_structured(event, data_marshaller=lambda b: b.decode())
    else:
        headers, data = to_binary(event, data_marshaller=lambda b: b)
    return dict(headers), data


def post_until_accepted(url: str, headers: dict, body: bytes, deadline_s: float = 60) -> str:
    """At-least-once delivery: retry until the sink answers 200 (it may be restarting)."""
    start = time.monotonic()
    while True:
        try:
            answer = httpx.post(url, headers=headers, content=body, timeout=5)
            if answer.status_code == 200:
                return answer.text.strip()
            assert answer.status_code >= 500, answer.text  # a 4xx would never succeed
        except httpx.TransportError:
            pass
        assert time.monotonic() - start < deadline_s, "the sink never accepted the event"
        time.sleep(0.05)


class Sink:
    """``python -m kfp_mlops.live.log_sink`` as its own process on 127.0.0.1."""

    def __init__(self, store: Path, spool: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "kfp_mlops.live.log_sink", "--store", str(store),
                     "--spool-dir", str(spool), "--host", "127.0.0.1", "--port",
                     str(self.port), *extra]
        self.log = spool.parent / f"sink-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Sink:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        start = time.monotonic()
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() - start < 60, self.log.read_text()
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        assert self.process.wait(timeout=30) == 0, self.log.read_text()


def logged_rows(store: Path, model: str) -> pd.DataFrame:
    files = sorted((store / "predictions" / model).rglob("part-*.parquet"))
    assert files, f"no prediction log files under {store}"
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


@pytest.fixture
def registered(tmp_path, classifier_dir) -> Path:
    """A store whose registry holds the penguins classifier as version 1."""
    store = tmp_path / "store"
    Registry(LocalStore(store)).publish("penguins", classifier_dir,
                                        read_metadata(classifier_dir), blessed=True,
                                        stage="production", reason="test", actor="test")
    return store


# ---------------------------------------------------------------- parsing


def test_binary_and_structured_events_parse_to_the_same_event():
    body = b'{"instances": [[1, 2]]}'
    binary = agent_event(REQUEST_TYPE, "id-1", body, T0, model="loans", version="3")
    structured = agent_event(REQUEST_TYPE, "id-1", body, T0, model="loans", version="3",
                             structured=True)
    assert binary[0]["content-type"] == "application/json"
    assert structured[0]["content-type"] == "application/cloudevents+json"
    events = [parse_cloudevent(*binary), parse_cloudevent(*structured)]
    for event in events:
        assert (event.id, event.type, event.model, event.version) == (
            "id-1", REQUEST_TYPE, "loans", "3")
        assert event.time == T0 and event.data == body and event.endpoint == "default"


def test_go_nanosecond_times_and_bad_events_are_handled():
    headers, body = agent_event(RESPONSE_TYPE, "x", b"{}", T0, model="loans")
    headers["ce-time"] = "2026-11-20T09:30:00.123456789Z"  # Go's RFC 3339 with nanoseconds
    assert parse_cloudevent(headers, body).time == T0 + timedelta(microseconds=123456)
    with pytest.raises(CloudEventError, match="not a CloudEvent"):
        parse_cloudevent({"content-type": "application/json"}, body)
    headers["ce-type"] = "com.example.other"
    with pytest.raises(CloudEventError, match="com.example.other"):
        parse_cloudevent(headers, body)


def test_writer_dedups_by_event_and_by_rows_already_stored(tmp_path):
    store = LocalStore(tmp_path / "store")

    def event(kind, rid, body):
        return InferenceEvent(id=rid, type=kind, source="pod", time=T0, model="m", data=body,
                              version="2")

    def pair(rid):
        return (event(REQUEST_TYPE, rid, b'{"instances": [[1.0, "a"], [2.0, "b"]]}'),
                event(RESPONSE_TYPE, rid, b'{"predictions": [0, 1]}'))

    log = PredictionLog(store, lambda model, version: ["x", "c"])
    request, response = pair("r1")
    assert log.accept(response) and log.accept(request)  # a response may come first
    assert not log.accept(request)  # redelivered while buffered
    [key] = log.flush()
    assert key.startswith("predictions/m/2/date=2026-11-20/part-")
    again = PredictionLog(store, lambda model, version: ["x", "c"])  # a restarted process
    assert not again.accept(request) and not again.accept(response)  # already stored
    assert again.accept(pair("r2")[0])
    again.close()  # the request without a response is written, prediction null
    rows = logged_rows(tmp_path / "store", "m").sort_values([REQUEST_ID, "_row"])
    assert rows[ROW_ID].tolist() == ["r1/0", "r1/1", "r2/0", "r2/1"]
    assert rows["x"].tolist() == [1.0, 2.0, 1.0, 2.0]
    assert rows[PREDICTION].tolist()[:2] == [0, 1] and rows[PREDICTION].isna().sum() == 2


# ---------------------------------------------------------------- the sink over HTTP


def test_model_server_traffic_logged_through_the_sink(tmp_path, registered, classifier_url,
                                                      classifier_dir, penguins_rows):
    """Real ModelServer answers; its bodies go as agent CloudEvents to the real sink."""
    features = read_metadata(classifier_dir).features
    sink = Sink(registered, tmp_path / "spool", "--max-rows", "4", "--max-age", "0.5").start()
    sent: dict[str, tuple[pd.DataFrame, list]] = {}
    try:
        for i in range(9):
            rows = penguins_rows.iloc[i * 3:i * 3 + 1 + i % 3]
            if i % 3 == 0:
                path, body = "/v1/models/penguins:predict", encode_v1(rows, features)
            elif i % 3 == 1:
                path, body = "/v1/models/penguins:predict", encode_v1(rows, features, records=True)
            else:
                path, body = "/v2/models/penguins/infer", encode_v2(rows, features)
            raw = json.dumps(body).encode()
            answer = httpx.post(classifier_url + path, content=raw, timeout=30,
                                headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
            out = answer.json()
            predictions = out.get("predictions") or out["outputs"][0]["data"]
            rid = str(uuid.uuid4())
            sent[rid] = (rows, predictions)
            events = [agent_event(REQUEST_TYPE, rid, raw, T0, model="penguins"),
                      agent_event(RESPONSE_TYPE, rid, answer.content, T0 + timedelta(
                          milliseconds=20), model="penguins")]
            if i % 2:
                events.reverse()  # the agent's 5 workers deliver in any order
            for headers, data in events:
                assert post_until_accepted(sink.url, headers, data) == "accepted"
        # KServe's agent does not retry, a Knative broker in front of the sink does:
        # a redelivered event is acknowledged and dropped.
        assert post_until_accepted(sink.url, *events[0]) == "duplicate"
        bad = httpx.post(sink.url, content=b"{}", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "not a CloudEvent" in bad.text
        metrics = httpx.get(f"{sink.url}/metrics").text
        assert "kfp_mlops_log_sink_duplicate_events_total 1" in metrics
    finally:
        sink.stop()
    rows = logged_rows(registered, "penguins")
    assert (registered / "predictions/penguins/1/date=2026-11-20").is_dir()
    assert len(rows) == sum(len(r) for r, _ in sent.values()) == 18
    assert not rows.duplicated([REQUEST_ID, "_row"]).any()
    for rid, (frame, predictions) in sent.items():
        mine = rows[rows[REQUEST_ID] == rid].sort_values("_row")
        assert mine[PREDICTION].tolist() == predictions
        pd.testing.assert_series_equal(
            mine["bill_length_mm"].reset_index(drop=True).astype(float),
            frame["bill_length_mm"].reset_index(drop=True).astype(float), check_names=False)
    assert set(pd.to_datetime(rows[LOGGED_AT], utc=True)) == {T0}


def test_sink_killed_mid_stream_loses_and_duplicates_nothing(tmp_path, registered):
    """SIGKILL between acknowledgements; the sender redelivers; every request once."""
    spool = tmp_path / "spool"
    sink = Sink(registered, spool, "--max-rows", "10", "--max-age", "60").start()
    events = []
    for i in range(40):
        rid = f"req-{i:03d}"
        body = json.dumps({"instances": [{"bill_length_mm": 40.0 + i, "bill_depth_mm": 18.0,
                                          "flipper_length_mm": 190.0, "body_mass_g": 3800.0,
                                          "island": "Biscoe", "sex": "male",
                                          "year": 2008}]}).encode()
        when = T0 + timedelta(seconds=i)
        events.append(agent_event(REQUEST_TYPE, rid, body, when, model="penguins"))
        events.append(agent_event(RESPONSE_TYPE, rid, b'{"predictions": ["Adelie"]}', when,
                                  model="penguins"))
    answers = []
    for n, (headers, body) in enumerate(events):
        if n == 20:  # 20 events (2 x --max-rows pairs): one micro-batch is due
            start = time.monotonic()
            while not list((registered / "predictions").rglob("part-*.parquet")):
                assert time.monotonic() - start < 30, "the sink wrote no micro-batch"
                time.sleep(0.05)
        if n == 37:  # mid-stream: 20 events in the store, 17 acknowledged but only spooled
            assert "kfp_mlops_log_sink_buffered_events 17\n" in httpx.get(
                f"{sink.url}/metrics").text
            sink.kill()
            # an at-least-once sender redelivers what it is unsure of: the last 6 events
            sink.start()
            for again in events[n - 6:n]:
                answers.append(post_until_accepted(sink.url, *again))
        answers.append(post_until_accepted(sink.url, headers, body))
    sink.stop()
    assert answers.count("duplicate") == 6
    rows = logged_rows(registered, "penguins")
    assert sorted(rows[REQUEST_ID]) == [f"req-{i:03d}" for i in range(40)]
    assert rows[PREDICTION].tolist() == ["Adelie"] * 40
    assert rows["bill_length_mm"].sort_values().tolist() == [40.0 + i for i in range(40)]
    assert not list(spool.glob("segment-*.jsonl"))[1:]  # at most the empty current one


def test_serve_log_to_writes_what_the_model_server_answered(tmp_path, registered,
                                                            classifier_dir, penguins_rows):
    """``--log_to``: the ModelServer logs itself, as the agent and the sink would."""
    features = read_metadata(classifier_dir).features
    store = tmp_path / "served-log"
    sent = {}
    with running_server(classifier_dir, "penguins", timeout_s=60,
                        extra_args=["--log_to", str(store), "--model_version", "7"]) as server:
        for i in range(5):
            rows = penguins_rows.iloc[i * 2:i * 2 + 2]
            rid = f"client-{i}"
            answer = httpx.post(f"{server.base_url}/v1/models/penguins:predict",
                                json=encode_v1(rows, features), headers={"ce-id": rid},
                                timeout=30)
            assert answer.status_code == 200
            sent[rid] = answer.json()["predictions"]
        refused = httpx.post(f"{server.base_url}/v1/models/penguins:predict",
                             json={"instances": [[1]]})
        assert refused.status_code == 400  # not logged: KServe logs no failed response
    rows = logged_rows(store, "penguins")  # written at SIGTERM
    assert sorted(rows[ROW_ID]) == sorted(f"client-{i}/{j}" for i in range(5) for j in (0, 1))
    assert set(rows["_model_version"]) == {"7"}
    for rid, predictions in sent.items():
        assert rows[rows[REQUEST_ID] == rid].sort_values("_row")[PREDICTION].tolist() == \
            predictions
    assert os.listdir(store / "predictions/penguins") == ["7"]


def test_an_event_redelivered_while_its_batch_is_uploaded_is_a_duplicate(tmp_path):
    answers = []

    class SlowStore(LocalStore):
        def upload_file(self, key, path):
            answers.append(log.accept(request))  # redelivered during the upload
            super().upload_file(key, path)

    request = InferenceEvent(id="r", type=REQUEST_TYPE, source="pod", time=T0, model="m",
                             data=b'{"instances": [[1.0]]}', version="1")
    response = InferenceEvent(id="r", type=RESPONSE_TYPE, source="pod", time=T0, model="m",
                              data=b'{"predictions": [1]}', version="1")
    log = PredictionLog(SlowStore(tmp_path / "store"), lambda model, version: ["x"])
    assert log.accept(request) and log.accept(response)
    log.close()
    assert answers == [False]
    assert len(logged_rows(tmp_path / "store", "m")) == 1


def test_a_failed_upload_keeps_the_events_for_the_next_flush(tmp_path):
    class FlakyStore(LocalStore):
        fail = True

        def upload_file(self, key, path):
            if FlakyStore.fail:
                FlakyStore.fail = False
                raise OSError("store unreachable")
            super().upload_file(key, path)

    log = PredictionLog(FlakyStore(tmp_path / "store"), lambda model, version: ["x"],
                        spool_dir=tmp_path / "spool")
    for kind, data in ((REQUEST_TYPE, b'{"instances": [[1.0]]}'),
                       (RESPONSE_TYPE, b'{"predictions": [1]}')):
        assert log.accept(InferenceEvent(id="r", type=kind, source="pod", time=T0, model="m",
                                         data=data, version="1"))
    with pytest.raises(OSError, match="unreachable"):
        log.flush()
    assert log.buffered() == 2  # put back, and spooled again
    restarted = PredictionLog(LocalStore(tmp_path / "store"), lambda model, version: ["x"],
                              spool_dir=tmp_path / "spool")  # as if the process died now
    assert restarted.buffered() == 2
    restarted.close()
    assert logged_rows(tmp_path / "store", "m")[PREDICTION].tolist() == [1]


def test_model_server_sends_agent_cloudevents_to_the_sink_over_http(
        tmp_path, registered, classifier_dir, penguins_rows):
    """``--log_to http://sink``: client -> ModelServer -> CloudEvents over HTTP -> sink."""
    features = read_metadata(classifier_dir).features
    sink = Sink(registered, tmp_path / "spool", "--max-rows", "3", "--max-age", "0.5").start()
    sent = {}
    try:
        with running_server(classifier_dir, "penguins", timeout_s=60,
                            extra_args=["--log_to", sink.url, "--model_version", "1"]) as server:
            for i in range(6):
                rows = penguins_rows.iloc[i:i + 1 + i % 2]
                body = encode_v2(rows, features) if i % 2 else encode_v1(rows, features)
                path = "/v2/models/penguins/infer" if i % 2 else "/v1/models/penguins:predict"
                answer = httpx.post(server.base_url + path, json=body,
                                    headers={"ce-id": f"http-{i}"}, timeout=30)
                assert answer.status_code == 200, answer.text
                out = answer.json()
                sent[f"http-{i}"] = out.get("predictions") or out["outputs"][0]["data"]
        # The server drained its queue at SIGTERM; the sink writes the rest at its own.
    finally:
        sink.stop()
    rows = logged_rows(registered, "penguins")
    assert sorted(rows[REQUEST_ID].unique()) == sorted(sent)
    for rid, predictions in sent.items():
        assert rows[rows[REQUEST_ID] == rid].sort_values("_row")[PREDICTION].tolist() == \
            predictions
    assert set(rows["_model_version"]) == {"1"} and len(rows) == 9
