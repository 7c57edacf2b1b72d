"""The prediction log sink under store, process and disk faults: every acknowledged row once.

moto's S3 server behind the fault proxy (``bench/faultkit/harness.py``) is the store; the
sink runs as its own process (``bench/faultkit/sinks.py``) with the client's short
timeouts, so each fault is seen in well under a second:

- the store down for a while (``KFP_MLOPS_SINK_OUTAGE_S``, default 20 s: "minutes" in
  production, bounded here): events keep being acknowledged into the spool, ``/healthz``
  turns 503 once flushing has failed past ``--unhealthy-after``, and all rows land once
  when the store is back;
- SIGKILL mid-flush, with every row upload failing before the server saw it (claims made,
  rows not written) or after it applied it (rows written, the answer lost): the restarted
  sink replays its spool and writes each request once;
- the spool full (a size cap, as a full volume would be): ``503`` with ``Retry-After``,
  never half an event, and everything acknowledged lands once;
- two replicas given the same events (and one killed and restarted between): each
  request is claimed once in the store and written once.
"""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest

from bench.faultkit.harness import faulty_s3
from bench.faultkit.proxy import Fault
from bench.faultkit.sinks import (
    MODEL,
    SinkProcess,
    pair,
    publish_contract_model,
    rows_in_store,
    send_until_accepted,
)
from kfp_mlops.live.prediction_log import REQUEST_TYPE
from kfp_mlops.model.registry import Registry  # noqa: F401 - the store layout under test
from kfp_mlops.storage import open_store

pytestmark = pytest.mark.slow

OUTAGE_S = float(os.environ.get("KFP_MLOPS_SINK_OUTAGE_S", "20"))


def _wait(condition, what: str, timeout: float = 90) -> None:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)


def _ids(store) -> list[str]:
    rows = rows_in_store(store, f"predictions/{MODEL}/")
    return sorted(rows["_request_id"]) if len(rows) else []


class _S3:
    """The faulty S3 and a store on a prefix of this test's own (moto keeps its objects
    across server restarts within one process)."""

    def __init__(self, running, prefix: str):
        self.proxy = running.proxy
        self.store_uri = running.uri(prefix)

    def uri(self, _prefix: str = "") -> str:
        return self.store_uri


@pytest.fixture
def s3(tmp_path):
    with faulty_s3(bucket="sink-bucket") as running:
        faulty = _S3(running, f"ml-{uuid.uuid4().hex[:8]}")
        store = open_store(faulty.uri())
        publish_contract_model(store, tmp_path)
        yield faulty, store


def test_store_down_for_a_while_keeps_every_acknowledged_row(tmp_path, s3):
    faulty, store = s3
    sink = SinkProcess(faulty.uri("ml"), tmp_path / "spool", "--max-rows", "5",
                       "--max-age", "0.3", "--unhealthy-after", "2").start()
    try:
        sent = 0
        for _ in range(5):
            for event in pair(sent):
                assert sink.post(*event).status_code == 200
            sent += 1
        _wait(lambda: len(_ids(store)) == 5, "the first rows")
        faulty.proxy.inject(Fault("drop_before", times=None))
        start = time.monotonic()
        unhealthy_seen = False
        while time.monotonic() - start < OUTAGE_S:
            for event in pair(sent):
                assert sink.post(*event).status_code == 200  # into the spool
            sent += 1
            unhealthy_seen = unhealthy_seen or sink.health() == 503
            time.sleep(0.2)
        assert unhealthy_seen, "/healthz stayed 200 while no flush succeeded"
        assert sink.metric("flush_failures_total") >= 1
        faulty.proxy.clear()
        _wait(lambda: sink.health() == 200 and sink.metric("buffered_events") == 0,
              "the sink to catch up after the outage")
    finally:
        faulty.proxy.clear()
        sink.stop()
    assert _ids(store) == [f"req-{i:05d}" for i in range(sent)]


@pytest.mark.parametrize("action", ["drop_before", "drop_after"])
def test_sigkill_mid_flush_then_replay_writes_each_request_once(tmp_path, s3, action):
    faulty, store = s3
    spool = tmp_path / "spool"
    uploads = Fault(action, times=None,
                    match=lambda method, path: method == "PUT" and path.split("?")[0]
                    .endswith(".parquet"))
    sink = SinkProcess(faulty.uri("ml"), spool, "--max-rows", "4", "--max-age", "0.3").start()
    events = [event for i in range(12) for event in pair(i)]
    try:
        faulty.proxy.inject(uploads)
        for event in events:
            assert sink.post(*event).status_code == 200
        # Claims are made before rows are written: wait until a flush got that far.
        _wait(lambda: any("/_claims/" in k for k in store.list("predictions/")), "claims")
        _wait(lambda: any(a == action for _, p, a in faulty.proxy.trace
                          if p.split("?")[0].endswith(".parquet")), "a failed upload")
    finally:
        sink.kill()
        faulty.proxy.clear()
    restarted = SinkProcess(faulty.uri("ml"), spool, "--max-rows", "4",
                            "--max-age", "0.3").start()
    try:
        for event in events[-6:]:  # an at-least-once sender redelivers what it is unsure of
            send_until_accepted(restarted, *event)
    finally:
        restarted.stop()
    assert _ids(store) == [f"req-{i:05d}" for i in range(12)]


def test_full_spool_answers_503_and_loses_nothing_acknowledged(tmp_path, s3):
    faulty, store = s3
    sink = SinkProcess(faulty.uri("ml"), tmp_path / "spool", "--max-rows", "5",
                       "--max-age", "0.3", "--spool-bytes", "6000").start()
    acknowledged: list[int] = []
    refused: list[int] = []
    try:
        faulty.proxy.inject(Fault("drop_before", times=None))  # nothing drains the spool
        for i in range(40):
            answers = [sink.post(*event) for event in pair(i)]
            codes = [a.status_code for a in answers]
            assert set(codes) <= {200, 503}, codes
            if 503 in codes:
                assert all(a.headers.get("retry-after") for a in answers
                           if a.status_code == 503)
                refused.append(i)
            else:
                acknowledged.append(i)
        assert refused and acknowledged, (acknowledged, refused)
        faulty.proxy.clear()
        for i in refused:  # the sender retries after Retry-After
            for event in pair(i):
                send_until_accepted(sink, *event)
    finally:
        faulty.proxy.clear()
        sink.stop()
    assert _ids(store) == [f"req-{i:05d}" for i in range(40)]


def test_two_replicas_given_the_same_events_write_each_request_once(tmp_path, s3):
    faulty, store = s3
    args = ("--max-rows", "3", "--max-age", "0.2")
    a = SinkProcess(faulty.uri("ml"), tmp_path / "spool-a", *args, replica="sink-0").start()
    b = SinkProcess(faulty.uri("ml"), tmp_path / "spool-b", *args, replica="sink-1").start()
    try:
        for i in range(30):
            events = pair(i)
            targets = [a, b] if i % 3 else ([a] if i % 2 else [b])  # most to both
            for sink in targets:
                for event in events:
                    send_until_accepted(sink, *event)
            if i == 15:  # a replica restarts between deliveries (a redelivery storm)
                a.kill()
                a.start()
        _wait(lambda: a.metric("buffered_events") == 0 and b.metric("buffered_events") == 0,
              "both replicas to flush")
        claimed = a.metric("claimed_elsewhere_total") + b.metric("claimed_elsewhere_total")
    finally:
        a.stop()
        b.stop()
    assert _ids(store) == [f"req-{i:05d}" for i in range(30)]
    assert claimed >= 1  # the claims, not luck, kept the duplicates out


def test_a_request_event_to_an_unreachable_store_is_still_acknowledged(tmp_path, s3):
    """A sink started while the store is up keeps taking events however long it is down."""
    faulty, store = s3
    sink = SinkProcess(faulty.uri("ml"), tmp_path / "spool", "--max-age", "0.2").start()
    try:
        faulty.proxy.inject(Fault("drop_before", times=None))
        headers, body = pair(0)[0]
        assert headers["ce-type"] == REQUEST_TYPE
        start = time.monotonic()
        answer = httpx.post(sink.url, headers=headers, content=body, timeout=30)
        assert answer.status_code == 200 and time.monotonic() - start < 10
    finally:
        faulty.proxy.clear()
        sink.stop()
