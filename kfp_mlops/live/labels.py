"""Late ground truth for logged predictions, and the labelled window as one Parquet file.

``kfp-mlops labels add --model NAME --data labels.csv`` stores a file of ``id,label``
rows (or ``KEY,label`` with ``--key KEY``, a column the requests carried, e.g. a
customer id) under ``labels/<model>/<digest>.parquet``: content-addressed, written
whole, so adding the same file twice stores it once. ``id`` is the logged row's
``_row_id``: the request's id (its ``Ce-Id`` header) for a one-row request,
``<id>/<row>`` for a row of a batch request. When a row gets several labels, the
latest added wins.

:func:`window_to_parquet` resolves a ``predictions:`` source (:mod:`kfp_mlops.live.logged`):
the window's rows from every logged version, the labels joined into the model's target
column (null where no label came yet), as one Parquet file that ingest versions and the
monitoring steps read like any batch.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.log_columns import LABELLED_AT, LOGGED_AT, REQUEST_ID, ROW, ROW_ID
from kfp_mlops.errors import DataError
from kfp_mlops.live.logged import PREDICTIONS_PREFIX, LogWindow, check_name, parse_window_source
from kfp_mlops.storage import Store, open_store

log = logging.getLogger(__name__)

LABELS_PREFIX = "labels"
LABEL = "label"
KEY = "key"  # the stored files' key column; the key's name is in the file's metadata
_KEY_META = b"kfp_mlops.key"


def labels_prefix(model: str) -> str:
    """Where ``model``'s label files live."""
    return f"{LABELS_PREFIX}/{check_name(model, 'model name')}/"


def read_labels_file(path: str | Path, key: str | None = None,
                     target: str | None = None) -> pd.DataFrame:
    """The ``KEY,label`` columns of a CSV/Parquet labels file, checked.

    The key column is ``key`` (default ``id``); the label column is ``label`` or the
    model's ``target``. Rows without a key or a label are refused by count.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"labels file {str(path)!r} does not exist; give a CSV of "
                        "id,label rows")
    try:
        frame = (pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
                 else pd.read_csv(path))
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError,
            ValueError, OSError) as exc:
        # An empty CSV, a corrupt Parquet, a binary file: the reader's own words, no trace.
        reason = "it is empty" if isinstance(exc, pd.errors.EmptyDataError) else \
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        raise DataError(f"labels file {str(path)!r} cannot be read ({reason}); give a CSV "
                        "with a header row id,label (or a Parquet file) and one row per "
                        "label") from None
    key = key or "id"
    if key not in frame.columns:
        raise DataError(f"labels file {str(path)!r} has no key column {key!r} (its columns: "
                        f"{list(frame.columns)}); name the logged request id 'id', or pass "
                        "--key COLUMN for a column the requests carried")
    label = LABEL if LABEL in frame.columns else target if target in frame.columns else None
    if label is None:
        wanted = f"'{LABEL}'" + (f" or the target '{target}'" if target else "")
        raise DataError(f"labels file {str(path)!r} has no label column {wanted} (its columns: "
                        f"{list(frame.columns)}); add the ground truth as a 'label' column")
    out = pd.DataFrame({KEY: frame[key].astype(str), LABEL: frame[label]})
    bad = int(frame[key].isna().sum() + frame[label].isna().sum())
    if bad:
        raise DataError(f"labels file {str(path)!r} has {bad} empty key or label cells; "
                        "every row needs both (leave unknown labels out)")
    if out.empty:
        raise DataError(f"labels file {str(path)!r} has no rows")
    return out


def add_labels(store: Store, model: str, labels: pd.DataFrame, key: str | None = None,
               now: datetime | None = None) -> tuple[str, bool]:
    """Store ``labels`` (``key``, ``label`` columns); return (store key, whether new)."""
    key_name = key or ROW_ID
    table = pa.Table.from_pandas(labels[[KEY, LABEL]].reset_index(drop=True),
                                 preserve_index=False)
    digest = hashlib.sha256()
    digest.update(key_name.encode() + b"\0")
    sink = io.BytesIO()
    pq.write_table(table, sink)  # the content without the time stamp names the file
    digest.update(sink.getvalue())
    target = f"{labels_prefix(model)}{digest.hexdigest()[:20]}.parquet"
    if store.exists(target):
        return target, False
    stamped = table.append_column(
        LABELLED_AT, pa.array([now or datetime.now(timezone.utc)] * len(table),
                              pa.timestamp("us", tz="UTC")))
    stamped = stamped.replace_schema_metadata({_KEY_META: key_name.encode()})
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-labels-") as tmp:
        path = Path(tmp) / "labels.parquet"
        pq.write_table(stamped, path)
        store.upload_file(target, path)  # written beside and renamed: never half a file
    return target, True


def read_window(store: Store, window: LogWindow) -> pd.DataFrame:
    """Every logged row of the window (all versions unless the window names one)."""
    base = f"{PREDICTIONS_PREFIX}/{window.model}/"
    versions = [window.version] if window.version else store.children(base)
    days = {f"date={d.isoformat()}" for d in window.days()}
    frames = []
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-window-") as tmp:
        for version in versions:
            for key in store.list(f"{base}{version}/"):
                parts = key.split("/")
                if parts[-2] not in days or not parts[-1].endswith(".parquet") or \
                        parts[-1].startswith("."):
                    continue
                path = Path(tmp) / f"{len(frames)}.parquet"
                store.download_file(key, path)
                frames.append(pq.read_table(path).to_pandas())
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    logged = pd.to_datetime(rows[LOGGED_AT], utc=True)
    rows = rows[(logged >= window.since) & (logged < window.until)]
    # In request order, whatever micro-batches the rows came in: the same rows are the
    # same table (one dataset version) and split the same way.
    return rows.sort_values([LOGGED_AT, REQUEST_ID, ROW], kind="stable").reset_index(drop=True)


def stored_labels(store: Store, model: str) -> dict[str, pd.DataFrame]:
    """Key column name -> (key, label, labelled_at) of every label file, latest last."""
    by_key: dict[str, list[pd.DataFrame]] = {}
    with tempfile.TemporaryDirectory(prefix="kfp-mlops-labels-") as tmp:
        for i, key in enumerate(store.list(labels_prefix(model))):
            if not key.endswith(".parquet") or key.rsplit("/", 1)[-1].startswith("."):
                continue
            path = Path(tmp) / f"{i}.parquet"
            store.download_file(key, path)
            table = pq.read_table(path)
            name = (table.schema.metadata or {}).get(_KEY_META, ROW_ID.encode()).decode()
            by_key.setdefault(name, []).append(table.to_pandas())
    return {name: pd.concat(frames, ignore_index=True).sort_values(LABELLED_AT, kind="stable")
            for name, frames in by_key.items()}


def join_labels(rows: pd.DataFrame, labels: dict[str, pd.DataFrame], target: str) -> pd.DataFrame:
    """``rows`` with ``target`` holding each row's latest label (null where none)."""
    out = rows.copy()
    label = pd.Series([None] * len(out), index=out.index, dtype=object)
    stamp = pd.Series(pd.NaT, index=out.index, dtype="datetime64[us, UTC]")
    for key_name, frame in labels.items():
        if key_name not in out.columns:
            log.warning("labels keyed by %r cannot be joined: the logged rows have no such "
                        "column", key_name)
            continue
        latest = frame.drop_duplicates(KEY, keep="last").set_index(KEY)
        keys = out[key_name].astype(str)
        found = keys.map(latest[LABEL])
        when = pd.to_datetime(keys.map(latest[LABELLED_AT]), utc=True)
        newer = found.notna() & (stamp.isna() | (when > stamp))
        label[newer] = found[newer]
        stamp[newer] = when[newer]
    out[target] = pd.array(label.tolist()) if label.notna().any() else label
    return out


def window_frame(window: LogWindow, target: str | None = None) -> tuple[pd.DataFrame, str]:
    """The window's logged rows with their labels in the target column, and its name.

    The target column is left out when no row has a label yet.
    """
    from kfp_mlops.model.registry import Registry, RegistryError

    store = open_store(window.store)
    rows = read_window(store, window)
    if rows.empty:
        raise DataError(f"no {window.describe()} in the store {store.uri}; check the model "
                        "name and the window (rows are filed by the UTC day of the request), "
                        "and that serving logs to this store")
    try:
        metadata = Registry(store).get(window.model).metadata
    except RegistryError as exc:
        if target is None:
            raise DataError(f"cannot tell the target column of {window.model!r} to put the "
                            f"labels in: {exc}") from None
        metadata = None
    target = target or metadata.target
    if metadata is not None:
        rows = conform_frame(rows, metadata.features, window.describe())
    if target in rows.columns:  # a client sent the target: the labels decide instead
        rows = rows.drop(columns=[target])
    joined = join_labels(rows, stored_labels(store, window.model), target)
    if window.labelled_only:
        joined = joined[joined[target].notna()].reset_index(drop=True)
        if joined.empty:
            raise DataError(f"none of the {len(rows)} {window.describe()} has a label yet; "
                            f"add labels first (kfp-mlops labels add --model {window.model})")
    elif joined[target].notna().sum() == 0:
        joined = joined.drop(columns=[target])
    return joined, target


def conform_frame(rows: pd.DataFrame, features: list, what: str) -> pd.DataFrame:
    """``rows`` with each feature column in the model's type; rows that cannot be dropped.

    The sink writes typed rows and keeps nonconforming requests aside, so this finds
    nothing in a log it wrote; it is the backstop for rows written before it checked
    types (a string in a numeric feature made the whole window unreadable as one file).
    """
    from kfp_mlops.data.kinds import BOOLEAN, NUMERIC, dtype_family

    bad = pd.Series(False, index=rows.index)
    out = rows.copy()
    for feature in features:
        if feature.name not in out.columns:
            continue
        column = out[feature.name]
        family = dtype_family(feature.dtype)
        if column.dtype.kind in ("b" if family == BOOLEAN else "iuf"):
            continue  # already typed in every file read (what the sink writes)
        if family == NUMERIC:
            numbers = pd.to_numeric(column.where(~column.map(lambda v: isinstance(v, bool)),
                                                 None), errors="coerce")
            bad |= column.notna() & numbers.isna()
            out[feature.name] = numbers.astype("float64")
        elif family == BOOLEAN:
            bad |= column.notna() & ~column.map(lambda v: isinstance(v, (bool, np.bool_)))
        else:
            bad |= column.notna() & ~column.map(lambda v: isinstance(v, str))
    if bad.any():
        log.warning("%s: %d rows whose features do not have the model's types were left out "
                    "(logged before the sink checked types)", what, int(bad.sum()))
        out = out[~bad].reset_index(drop=True)
    return out


def window_to_parquet(source: str, out_path: str | Path) -> tuple[int, int]:
    """Write the labelled rows a ``predictions:`` source names; return (rows, labelled)."""
    window = parse_window_source(source)
    frame, target = window_frame(window)
    labelled = int(frame[target].notna().sum()) if target in frame.columns else 0
    tmp = Path(out_path).with_name(Path(out_path).name + ".tmp")
    try:
        frame.to_parquet(tmp, index=False)
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: %d rows, %d labelled", window.describe(), len(frame), labelled)
    return len(frame), labelled
