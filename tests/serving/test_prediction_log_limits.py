"""The prediction log's bounds, in process: what one event, a full disk or a bug cannot do.

A flush never raises for what a client sent (only for the store failing); a spooled event
that no longer passes the checks is refused on replay, not retried forever; the spool
never keeps half a line; the byte budget refuses before memory grows; a flush holds at
most ``batch_bytes`` of events.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from kfp_mlops.live.logged import LogContract
from kfp_mlops.live.prediction_log import (
    EVENT_OVERHEAD,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    BudgetExceeded,
    CloudEventError,
    InferenceEvent,
    PredictionLog,
    SpoolFullError,
    check_body,
    json_depth,
)
from kfp_mlops.model.package import Feature
from kfp_mlops.storage import LocalStore

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
CONTRACT = LogContract((Feature("x", "float64", "numeric"), Feature("c", "object", "categorical")),
                       "classification", ("a", "b"))


def event(kind: str, rid: str, body: dict | bytes) -> InferenceEvent:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InferenceEvent(id=rid, type=kind, source="pod", time=T0, model="m", data=data,
                          version="1")


def good(rid: str, x: float = 1.0) -> list[InferenceEvent]:
    return [event(REQUEST_TYPE, rid, {"instances": [{"x": x, "c": "u"}]}),
            event(RESPONSE_TYPE, rid, {"predictions": ["a"]})]


def rows(root) -> list[str]:
    files = sorted((root / "predictions" / "m").rglob("part-*.parquet"))
    return sorted(i for f in files for i in pq.read_table(f).column("_request_id").to_pylist())


def test_json_depth_is_counted_outside_strings_without_recursion():
    assert json_depth(b'{"a": [1, {"b": "[[[[["}]}') == 3
    assert json_depth(b'"\\"[[[["') == 0
    assert json_depth(b"[" * 1_000_000) == 1_000_000  # no RecursionError, no stack
    with pytest.raises(CloudEventError, match="nests 200 deep"):
        check_body(b"[" * 200 + b"]" * 200, "request")


def test_a_pair_that_cannot_become_rows_is_a_dead_letter_and_later_flushes_go_on(tmp_path):
    store = LocalStore(tmp_path / "store")
    log = PredictionLog(store, lambda m, v: CONTRACT, spool_dir=tmp_path / "spool")
    for e in [*good("ok-1"), event(REQUEST_TYPE, "bad", {"instances": [{"x": "text",
                                                                         "c": "u"}]}),
              event(RESPONSE_TYPE, "bad", {"predictions": ["a"]}),
              event(REQUEST_TYPE, "shape", {"instances": [[[[1]]]]}),
              event(RESPONSE_TYPE, "shape", {"predictions": ["a"]})]:
        assert log.accept(e)
    log.flush()
    for e in good("ok-2"):
        assert log.accept(e)
    log.close()
    assert rows(tmp_path / "store") == ["ok-1", "ok-2"]
    assert log.stats.dead_letters == 2
    dead = [pq.read_table(f) for f in (tmp_path / "store" / "predictions" /
                                        "_dead-letters").rglob("*.parquet")]
    assert sorted(i for t in dead for i in t.column("_request_id").to_pylist()) == [
        "bad", "shape"]


def test_an_unknown_model_version_is_a_dead_letter_not_a_stuck_flush(tmp_path):
    log = PredictionLog(LocalStore(tmp_path / "store"), lambda m, v: None)
    for e in good("r"):
        log.accept(e)
    log.close()
    assert log.stats.dead_letters == 1 and log.buffered() == 0


def test_a_spooled_event_that_fails_the_checks_is_refused_on_replay(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    deep = event(REQUEST_TYPE, "deep", b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    (spool / "segment-000000000001.jsonl").write_text(
        deep.to_json() + "\n" + good("fine")[0].to_json() + "\n" + good("fine")[1].to_json()
        + "\n")
    log = PredictionLog(LocalStore(tmp_path / "store"), lambda m, v: CONTRACT, spool_dir=spool)
    assert log.stats.replay_refused == 1 and log.buffered() == 2
    log.close()
    assert rows(tmp_path / "store") == ["fine"]


def test_a_full_spool_refuses_whole_events(tmp_path):
    spool = tmp_path / "spool"
    log = PredictionLog(LocalStore(tmp_path / "store"), lambda m, v: CONTRACT,
                        spool_dir=spool, spool_bytes=2500)
    taken = []
    with pytest.raises(SpoolFullError):
        for i in range(100):
            for e in good(f"r{i:03d}"):
                log.accept(e)
            taken.append(f"r{i:03d}")
    # Every line in the spool is whole: a restart replays exactly what was acknowledged.
    lines = [line for p in spool.glob("segment-*.jsonl") for line in p.read_text().splitlines()]
    assert all(json.loads(line)["id"] for line in lines)
    log.close()
    assert rows(tmp_path / "store") == sorted(taken)


def test_a_spool_full_of_half_pairs_takes_their_other_halves_and_drains(tmp_path):
    spool = tmp_path / "spool"
    log = PredictionLog(LocalStore(tmp_path / "store"), lambda m, v: CONTRACT,
                        spool_dir=spool, spool_bytes=1500)
    requests = []
    with pytest.raises(SpoolFullError):
        for i in range(100):
            request = good(f"r{i:02d}")[0]
            log.accept(request)
            requests.append(request.id)
    for rid in requests:  # each completes a pair: taken past the cap
        assert log.accept(good(rid)[1])
    log.flush()
    assert rows(tmp_path / "store") == sorted(requests) and log.buffered() == 0
    assert log.accept(good("after")[0])  # drained: new events fit again


def test_budget_refuses_before_memory_grows_and_a_flush_holds_a_bounded_batch(tmp_path):
    log = PredictionLog(LocalStore(tmp_path / "store"), lambda m, v: CONTRACT,
                        budget_bytes=200_000, batch_bytes=300 + 4 * EVENT_OVERHEAD)
    for i in range(20):
        for e in good(f"r{i:02d}"):
            log.accept(e)
    held = log.held_bytes()
    assert held > 0
    assert held == sum(e.cost for i in range(20) for e in good(f"r{i:02d}"))
    with pytest.raises(BudgetExceeded, match="budget is 200000"):
        log.reserve(200_000 - held + 1)
    log.reserve(100)
    log.release(100)
    pair_bytes = sum(len(e.data) for e in good("r00"))
    log.flush()
    per_file = [pq.read_table(f).num_rows for f in
                (tmp_path / "store" / "predictions" / "m").rglob("part-*.parquet")]
    pair_cost = pair_bytes + 2 * EVENT_OVERHEAD
    assert len(per_file) > 1 and max(per_file) <= (300 + 4 * EVENT_OVERHEAD) // pair_cost
    assert log.held_bytes() == 0 and rows(tmp_path / "store") == [f"r{i:02d}" for i in range(20)]


def test_a_failing_store_fails_the_flush_and_marks_the_log_unhealthy(tmp_path):
    class DownStore(LocalStore):
        down = True

        def upload_file(self, key, path):
            if DownStore.down:
                raise OSError("store unreachable")
            super().upload_file(key, path)

    now = [0.0]
    log = PredictionLog(DownStore(tmp_path / "store"), lambda m, v: CONTRACT,
                        clock=lambda: now[0])
    for e in good("r"):
        log.accept(e)
    with pytest.raises(OSError):
        log.flush()
    now[0] = 200.0
    assert log.unhealthy_for() == 200.0 and "unreachable" in log.last_error
    DownStore.down = False
    log.flush()
    assert log.unhealthy_for() == 0.0 and rows(tmp_path / "store") == ["r"]


def test_a_window_with_rows_logged_before_types_were_checked_still_reads(tmp_path):
    """A part file an older sink wrote with text in a numeric feature: left out, not fatal."""
    import pyarrow as pa

    from bench.faultkit.sinks import MODEL, publish_contract_model
    from kfp_mlops.live.labels import window_to_parquet
    from kfp_mlops.live.logged import window_source

    store = LocalStore(tmp_path / "store")
    publish_contract_model(store, tmp_path)
    day = datetime.now(timezone.utc)
    folder = tmp_path / "store" / "predictions" / MODEL / "1" / f"date={day.date()}"
    folder.mkdir(parents=True)
    common = {"_row": [0, 0], "_row_id": ["a", "b"], "_logged_at": [day, day],
              "_model_version": ["1", "1"], "_endpoint": ["default"] * 2,
              "_prediction": ["yes", "no"]}
    pq.write_table(pa.table({"income": ["1.5", "lots"], "age": [3, 4],
                             "region": ["r1", "r2"], "_request_id": ["a", "b"], **common}),
                   folder / "part-old.parquet")
    common["_row_id"] = ["c", "d"]
    pq.write_table(pa.table({"income": [2.0, 3.0], "age": [5, 6], "region": ["r1", "r2"],
                             "_request_id": ["c", "d"], **common}), folder / "part-new.parquet")
    out = tmp_path / "window.parquet"
    count, _ = window_to_parquet(window_source(MODEL, window="1d", store=str(store.root)), out)
    frame = pq.read_table(out).to_pandas()
    assert count == 3 and sorted(frame["_request_id"]) == ["a", "c", "d"]
    assert frame["income"].dtype == "float64"


def test_a_registry_that_cannot_be_read_fails_the_flush_not_the_event(tmp_path):
    from kfp_mlops.storage import UnreachableError

    down = [True]

    def contract(model, version):
        if down[0]:
            raise UnreachableError("the store at http://s3 is unreachable")
        return CONTRACT

    log = PredictionLog(LocalStore(tmp_path / "store"), contract)
    for e in good("r"):
        log.accept(e)
    with pytest.raises(UnreachableError):
        log.flush()
    assert log.stats.dead_letters == 0 and log.buffered() == 2
    down[0] = False
    log.flush()
    assert rows(tmp_path / "store") == ["r"]
