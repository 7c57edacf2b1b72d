"""Prediction log windows and late labels: the source string, the join, the errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from kfp_mlops.data.log_columns import LOGGED_AT, PREDICTION, ROW_ID
from kfp_mlops.errors import DataError, KfpMlopsError
from kfp_mlops.live.labels import (
    KEY,
    LABEL,
    add_labels,
    read_labels_file,
    stored_labels,
    window_frame,
)
from kfp_mlops.live.logged import parse_window_source, window_source
from kfp_mlops.live.prediction_log import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    InferenceEvent,
    PredictionLog,
)
from kfp_mlops.storage import LocalStore, open_store

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def test_window_source_round_trips_and_relative_windows_end_when_read():
    source = window_source("loans", since="2026-11-01", until="2026-11-08T00:00:00Z",
                           store="s3://b/p")
    window = parse_window_source(source)
    assert (window.model, window.store) == ("loans", "s3://b/p")
    assert window.since == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert len(window.days()) == 7  # until is exclusive
    relative = parse_window_source(window_source("loans", window="2d"), now=NOW)
    assert (relative.since, relative.until) == (NOW - timedelta(days=2), NOW)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"window": "7x"}, "'7x' is not a duration"),
    ({"since": "last tuesday"}, "--since 'last tuesday' is not a date"),
    ({}, "needs --since"),
    ({"since": "2026-11-01", "window": "7d"}, "not both"),
])
def test_bad_windows_name_the_value_and_the_fix(kwargs, message):
    with pytest.raises(DataError, match=message):
        window_source("loans", **kwargs)


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(KfpMlopsError, match="at or after it ends"):
        parse_window_source("predictions:loans?since=2026-11-08&until=2026-11-01")


def _log_two_requests(store_uri: str) -> None:
    """Two requests (one of two rows, one of one row) of model m, version 3."""
    log = PredictionLog(open_store(store_uri), lambda model, version: ["x"])
    for rid, body, answer in (("a", b'{"instances": [[1.0], [2.0]]}', b'{"predictions": [0, 1]}'),
                              ("b", b'{"instances": [{"x": 3.0, "customer": "c-9"}]}',
                               b'{"predictions": [1]}')):
        for kind, data in ((REQUEST_TYPE, body), (RESPONSE_TYPE, answer)):
            log.accept(InferenceEvent(id=rid, type=kind, source="pod", time=NOW, model="m",
                                      data=data, version="3"))
    log.close()


def test_labels_join_latest_wins_by_row_id_or_a_named_key(tmp_path):
    store = LocalStore(tmp_path / "store")
    _log_two_requests(str(tmp_path / "store"))
    first = pd.DataFrame({KEY: ["a/0", "a/1"], LABEL: [0, 0]})
    add_labels(store, "m", first, now=NOW)
    assert add_labels(store, "m", first, now=NOW)[1] is False  # the same file: stored once
    add_labels(store, "m", pd.DataFrame({KEY: ["a/1"], LABEL: [1]}), now=NOW + timedelta(1))
    add_labels(store, "m", pd.DataFrame({KEY: ["c-9"], LABEL: [1]}), key="customer", now=NOW)
    assert set(stored_labels(store, "m")) == {ROW_ID, "customer"}

    source = window_source("m", since="2026-11-29", until="2026-11-30",
                           store=str(tmp_path / "store"))
    frame, target = window_frame(parse_window_source(source), target="y")
    frame = frame.sort_values(ROW_ID)
    assert frame[ROW_ID].tolist() == ["a/0", "a/1", "b"]
    assert frame["y"].tolist() == [0, 1, 1]  # a/1: the later label; b: by its customer key
    assert frame[PREDICTION].tolist() == [0, 1, 1]
    assert pd.to_datetime(frame[LOGGED_AT], utc=True).eq(NOW).all()


def test_a_labelled_only_window_without_labels_says_what_to_do(tmp_path):
    _log_two_requests(str(tmp_path / "store"))
    source = window_source("m", since="2026-11-29", until="2026-11-30",
                           store=str(tmp_path / "store")) + "&labelled=only"
    with pytest.raises(DataError, match="labels add --model m"):
        window_frame(parse_window_source(source), target="y")
    empty = window_source("m", since="2026-10-01", until="2026-10-02",
                          store=str(tmp_path / "store"))
    with pytest.raises(DataError, match="no predictions of m from 2026-10-01"):
        window_frame(parse_window_source(empty), target="y")


def test_labels_file_problems_are_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("request,label\nr1,1\n")
    with pytest.raises(DataError, match="no key column 'id'.*--key COLUMN"):
        read_labels_file(path)
    path.write_text("id,outcome\nr1,1\n,0\n")
    with pytest.raises(DataError, match="1 empty key or label cells"):
        read_labels_file(path, target="outcome")
    path.write_text("id,truth\nr1,1\n")
    with pytest.raises(DataError, match="no label column 'label' or the target 'outcome'"):
        read_labels_file(path, target="outcome")


@pytest.mark.slow
def test_prediction_log_on_s3_dedups_across_a_restart(s3):
    """The sink's store may be S3: a restarted log finds the ids in the stored files."""
    uri = s3.uri("kfp-mlops")
    _log_two_requests(uri)
    again = PredictionLog(open_store(uri), lambda model, version: ["x"])
    assert not again.accept(InferenceEvent(id="a", type=REQUEST_TYPE, source="pod", time=NOW,
                                           model="m", data=b"{}", version="3"))
    assert again.stats.duplicates == 1
    keys = open_store(uri).list("predictions/m/3/date=2026-11-29/")
    assert len(keys) == 1 and keys[0].endswith(".parquet")
