"""The prediction log in the store: its layout, its columns, and reading a time window.

What production served is kept as Parquet files, one per flushed micro-batch::

    predictions/<model>/<version>/date=YYYY-MM-DD/part-<digest>.parquet

A row is one input row of one inference request: the model's features as the client
sent them, the prediction, and the log's own columns (all start with ``_``; they are
defined in :mod:`kfp_mlops.data.log_columns`, so training knows never to use them as
features). ``date=`` is the UTC day of the request (its CloudEvent ``time``), so a
redelivered event always lands in the same partition.

A window source, ``predictions:NAME?since=...&until=...`` (or ``window=7d``, relative to
the moment it is read), names the rows logged for model NAME in that time; ingest
resolves it (:func:`kfp_mlops.live.labels.window_to_parquet`) into one Parquet file with
the late labels joined, so every pipeline that reads a file reads the logs too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pyarrow as pa

from kfp_mlops.data.kinds import BOOLEAN, NUMERIC, dtype_family
from kfp_mlops.data.log_columns import (
    SOURCE_SCHEME,
)
from kfp_mlops.errors import DataError

PREDICTIONS_PREFIX = "predictions"
# Below the log's prefix (one write permission covers the sink) but never read as rows: a
# model name starts with a letter or digit, so no model's folder is named like these.
DEAD_LETTERS_PREFIX = f"{PREDICTIONS_PREFIX}/_dead-letters"
CLAIMS_PREFIX = f"{PREDICTIONS_PREFIX}/_claims"

# The InferenceService annotation naming the served registry version; the logger spec
# lists it in metadataAnnotations so KServe's agent copies it into every event.
VERSION_ANNOTATION = "serving.kfp-mlops.io/model-version"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def check_name(value: str, what: str) -> str:
    """``value`` if it can be a folder name of the log layout, else a DataError naming it."""
    if not _NAME.match(value or ""):
        raise DataError(
            f"{what} {value!r} cannot name a prediction log folder; use letters, digits, "
            "'.', '_' and '-' (as KServe's InferenceService names and registry versions do)"
        )
    return value


def partition_prefix(model: str, version: str, day: date) -> str:
    """The folder of one model version's rows of one UTC day."""
    return f"{PREDICTIONS_PREFIX}/{model}/{version}/date={day.isoformat()}/"


def dead_letter_prefix(model: str, day: date) -> str:
    """The folder of one model's refused events of one UTC day (never read as rows)."""
    return f"{DEAD_LETTERS_PREFIX}/{model}/date={day.isoformat()}/"


# ---------------------------------------------------------------- typed rows


class NonconformingRow(DataError):
    """A logged row that does not match the model's input types: a dead letter."""


@dataclass(frozen=True)
class LogContract:
    """What a logged row must look like: the model's features (typed), and its predictions.

    ``features`` are :class:`kfp_mlops.model.package.Feature` records (name, dtype,
    nullable); ``classes`` (a classifier's) type the predictions, a regressor's are floats.
    """

    features: tuple[Any, ...]
    task: str | None = None
    classes: tuple[Any, ...] | None = None
    extra_columns: int = 64  # fields beyond the features kept (as text) per row, at most
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(f.name for f in self.features))

    @classmethod
    def of(cls, metadata: Any) -> LogContract:
        """The contract of a model version, from its metadata."""
        classes = tuple(metadata.classes) if metadata.classes is not None else None
        return cls(tuple(metadata.features), metadata.task, classes)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _typed(feature: Any, values: list[Any], rows: int) -> pa.Array:
    """One feature column with the type the model reads it as (what the server coerces)."""
    family = dtype_family(feature.dtype)
    nulls = 0
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            nulls += 1
            continue
        if family == NUMERIC:
            ok = _is_number(value) and not (isinstance(value, float) and math.isinf(value))
            if ok and isinstance(value, int) and abs(value) >= 2**63:
                ok = False
        elif family == BOOLEAN:
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise NonconformingRow(
                f"row {i}: feature '{feature.name}' is {feature.dtype} but the request sent "
                f"{type(value).__name__} {shown}"
            )
    if nulls and not feature.nullable:
        raise NonconformingRow(f"feature '{feature.name}' is not nullable but {nulls} of "
                               f"{rows} rows are null")
    values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    if family == NUMERIC:
        integral = feature.dtype.lower().startswith(("int", "uint"))
        if integral and not nulls and all(isinstance(v, int) or float(v).is_integer()
                                          for v in values):
            return pa.array([int(v) for v in values], pa.int64())
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if family == BOOLEAN:
        return pa.array(values, pa.bool_())
    return pa.array(values, pa.string())


def _prediction_type(contract: LogContract) -> pa.DataType:
    if contract.classes:
        first = contract.classes[0]
        if isinstance(first, bool):
            return pa.bool_()
        if isinstance(first, int):
            return pa.int64()
        if isinstance(first, float):
            return pa.float64()
        return pa.string()
    return pa.float64()


def typed_predictions(contract: LogContract, predictions: list[Any]) -> pa.Array:
    """The predictions column in the type of the model's classes (floats for a regressor)."""
    kind = _prediction_type(contract)
    out: list[Any] = []
    for i, value in enumerate(predictions):
        if value is None:
            out.append(None)
            continue
        if pa.types.is_string(kind):
            ok = isinstance(value, str)
        elif pa.types.is_boolean(kind):
            ok = isinstance(value, bool)
        elif pa.types.is_integer(kind):
            ok = _is_number(value) and float(value).is_integer() and abs(value) < 2**63
            value = int(value) if ok else value
        else:
            ok = _is_number(value) and math.isfinite(value)
            value = float(value) if ok else value
        if not ok:
            raise NonconformingRow(
                f"prediction {i} is {type(value).__name__} {str(value)[:40]!r}, not a {kind} "
                "as the model's predictions are"
            )
        out.append(value)
    return pa.array(out, kind)


def typed_columns(contract: LogContract, rows: Sequence[dict[str, Any]]) -> dict[str, pa.Array]:
    """The rows' feature columns in the model's types, then other fields as text.

    Raises :class:`NonconformingRow` for a row the model would refuse (a missing feature,
    a value of the wrong type, a null where none is allowed) or one carrying more than
    ``contract.extra_columns`` fields beyond the features, or a non-scalar in one.
    """
    columns: dict[str, pa.Array] = {}
    for i, row in enumerate(rows):
        missing = [n for n in contract.names if n not in row]
        if missing:
            raise NonconformingRow(f"row {i} has no feature {missing[0]!r}; the model's "
                                   f"features are {list(contract.names)}")
    for feature in contract.features:
        columns[feature.name] = _typed(feature, [row.get(feature.name) for row in rows],
                                       len(rows))
    extras: list[str] = []
    known = set(contract.names)
    for row in rows:
        for name in row:
            if name not in known and not name.startswith("_") and name not in extras:
                extras.append(name)
                if len(extras) > contract.extra_columns:
                    raise NonconformingRow(
                        f"the rows carry more than {contract.extra_columns} fields beyond the "
                        f"model's {len(known)} features")
    for name in extras:
        values = []
        for i, row in enumerate(rows):
            value = row.get(name)
            if isinstance(value, (dict, list)):
                raise NonconformingRow(f"row {i}: field {name!r} holds a "
                                       f"{type(value).__name__}, not a value")
            values.append(None if value is None else
                          (("true" if value else "false") if isinstance(value, bool)
                           else str(value)))
        columns[name] = pa.array(values, pa.string())
    return columns


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``2w``, ``90s`` as a timedelta (DataError otherwise)."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise DataError(
            f"window {text!r} is not a duration; write a positive number and a unit, "
            "e.g. 7d, 12h, 30m, 2w"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (naive means UTC)."""
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            f"{what} {text!r} is not a date or time; write ISO 8601, e.g. 2026-11-01 or "
            "2026-11-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class LogWindow:
    """The rows model ``model`` served from ``since`` (inclusive) to ``until`` (exclusive)."""

    model: str
    since: datetime
    until: datetime
    store: str | None = None  # None: $KFP_MLOPS_STORE, else ./mlops-store
    version: str | None = None  # None: every version logged in the window
    labelled_only: bool = False  # only the rows whose label came (what a model learns from)

    def days(self) -> list[date]:
        """The UTC days the window touches."""
        first, last = self.since.date(), (self.until - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def describe(self) -> str:
        """The window in words, for messages and reports."""
        version = f"@{self.version}" if self.version else ""
        return (f"predictions of {self.model}{version} from "
                f"{self.since.isoformat(timespec='seconds')} to "
                f"{self.until.isoformat(timespec='seconds')}")


def window_source(
    model: str, *, since: str | None = None, until: str | None = None,
    window: str | None = None, store: str | None = None, version: str | None = None,
) -> str:
    """The ``predictions:`` source string for a window (what ``--data`` may be).

    ``window`` (e.g. ``7d``) is kept relative: it is resolved when the source is read, so
    a scheduled run always monitors the last 7 days. Otherwise ``since``/``until``.
    """
    check_name(model, "model name")
    query: dict[str, str] = {}
    if window:
        if since:
            raise DataError("give --window or --since, not both: --window 7d means "
                            "'the 7 days before --until (default: now)'")
        parse_duration(window)
        query["window"] = window
    elif since:
        query["since"] = parse_time(since, "--since").isoformat()
    else:
        raise DataError("a prediction log window needs --since (and --until) or --window, "
                        "e.g. --window 7d")
    if until:
        query["until"] = parse_time(until, "--until").isoformat()
    if version:
        query["version"] = check_name(version, "model version")
    if store:
        query["store"] = store
    return f"{SOURCE_SCHEME}{quote(model)}?{urlencode(query)}"


def parse_window_source(source: str, now: datetime | None = None) -> LogWindow:
    """The :class:`LogWindow` a ``predictions:`` source names (relative windows end now)."""
    body = source[len(SOURCE_SCHEME):]
    model, _, query = body.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - {"since", "until", "window", "store", "version", "labelled"})
    if unknown:
        raise DataError(f"{source!r}: unknown parameter {unknown[0]!r}; a prediction log "
                        "source takes since, until, window, version, labelled and store")
    if params.get("labelled", "only") != "only":
        raise DataError(f"{source!r}: labelled={params['labelled']!r}; the one value is "
                        "labelled=only (leave it out for every row)")
    check_name(model, "model name")
    until = parse_time(params["until"], "until") if params.get("until") else (
        now or datetime.now(timezone.utc))
    if params.get("window"):
        since = until - parse_duration(params["window"])
    elif params.get("since"):
        since = parse_time(params["since"], "since")
    else:
        raise DataError(f"{source!r} names no time window; add since=... or window=7d")
    if since >= until:
        raise DataError(f"{source!r}: the window starts ({since.isoformat()}) at or after it "
                        f"ends ({until.isoformat()}); give since before until")
    version = params.get("version") or None
    return LogWindow(model, since, until, params.get("store") or None,
                     check_name(version, "model version") if version else None,
                     labelled_only="labelled" in params)
