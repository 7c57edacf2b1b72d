"""What data and training know of the prediction log: its columns and its source scheme.

The live loop (:mod:`kfp_mlops.live`) writes the log and reads its windows; the layers
below it need only this much of it: which columns the log adds (training never uses
them as features, validation never checks them), and which sources name a window of
the log rather than a file (``predictions:NAME?...``, :mod:`kfp_mlops.live.logged`).
"""

from __future__ import annotations

SOURCE_SCHEME = "predictions:"

REQUEST_ID = "_request_id"  # the CloudEvent id KServe's agent gives request and response
ROW = "_row"  # the row's index within its request
ROW_ID = "_row_id"  # the labels' default key: the request id, "<id>/<row>" in a batch
LOGGED_AT = "_logged_at"  # the request's time (UTC), from the CloudEvent "time"
MODEL_VERSION = "_model_version"
ENDPOINT = "_endpoint"  # KServe's endpoint extension: default or canary
PREDICTION = "_prediction"  # null when no response was logged for the request
LOG_COLUMNS = (REQUEST_ID, ROW, ROW_ID, LOGGED_AT, MODEL_VERSION, ENDPOINT, PREDICTION)
LABELLED_AT = "_labelled_at"


def is_log_column(name: str) -> bool:
    """Whether ``name`` is a column the prediction log adds (never a feature)."""
    return name in LOG_COLUMNS or name == LABELLED_AT


def is_window_source(source: str) -> bool:
    """Whether ``source`` names prediction log rows rather than a file."""
    return str(source).startswith(SOURCE_SCHEME)


def labelled_only(source: str) -> str:
    """``source`` restricted to its labelled rows (what a published version holds)."""
    return source if "labelled=" in source else f"{source}&labelled=only"
