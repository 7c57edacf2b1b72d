"""Batch scoring of Parquet or CSV files with bounded memory.

Rows stream through in batches (Parquet record batches, CSV blocks), each scored by the
model and appended to the output with a ``pq.ParquetWriter``. The input schema is checked
against the model's features before anything is scored, and the output is written to
a temporary file renamed into place at the end: a reader never sees half a result.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kfp_mlops.data.kinds import (
    BOOLEAN,
    CATEGORICAL,
    DATETIME,
    NUMERIC,
    arrow_kind,
    dtype_family,
    family,
)
from kfp_mlops.data.parquet import parquet_writer
from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.model.package import Feature, load_model_folder
from kfp_mlops.serving.contract import InputContract

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "proba_"
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")


class BatchInputError(KfpMlopsError, ValueError):
    """The input file does not fit the model's feature schema (nothing was written)."""


@dataclass
class BatchResult:
    """What a batch scoring run produced."""

    rows: int
    batches: int
    output_path: str
    columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _arrow_family(arrow_type: pa.DataType) -> str:
    """A batch column's value family, as :func:`dtype_family` names a feature's."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type  # encoded values are scored as the values
    if pa.types.is_null(arrow_type):
        return "null"  # all empty: fits a nullable feature of any family
    kind = arrow_kind(arrow_type)
    if kind is None or kind == DATETIME or pa.types.is_decimal(arrow_type):
        return str(arrow_type)  # no feature is trained on these: convert before scoring
    return family(kind)


def check_schema(
    schema: pa.Schema,
    features: Sequence[Feature],
    keep_columns: Sequence[str],
    source: str,
    contract: InputContract | None = None,
) -> None:
    """Refuse an input whose columns or types do not fit the features, naming them.

    ``contract`` (the online one: target and dropped columns ignored, others refused)
    judges the columns beyond the features; without one, extra columns are ignored.
    """
    names = set(schema.names)
    missing = [f.name for f in features if f.name not in names]
    if missing:
        raise BatchInputError(
            f"{source} lacks feature columns {missing} (it has {schema.names}); "
            "add them (null where unknown) or score with the model that matches this data"
        )
    absent = [c for c in keep_columns if c not in names]
    if absent:
        raise BatchInputError(f"keep_columns {absent} are not columns of {source}")
    for feature in features:
        if feature.kind == DATETIME and arrow_kind(schema.field(feature.name).type) in (
                DATETIME, CATEGORICAL):
            continue  # timestamps or text: the model's calendar step parses both
        found = _arrow_family(schema.field(feature.name).type)
        wanted = dtype_family(feature.dtype)
        if found != wanted and not (found == "null" and feature.nullable):
            raise BatchInputError(
                f"column '{feature.name}' is {schema.field(feature.name).type} in {source} "
                f"but the model was trained on {feature.dtype} ({wanted}); convert the "
                "column or retrain on data of this type"
            )
    unknown = contract.unknown(c for c in schema.names if c not in keep_columns) \
        if contract else []
    if unknown:
        ignored = f"; the target and dropped columns {sorted(contract.ignored)} are " \
            "ignored" if contract and contract.ignored else ""
        raise BatchInputError(
            f"{source} has unknown columns {unknown}; the model's features are "
            f"{[f.name for f in features]}{ignored}. Fix the names if they are typos, "
            "copy them to the output with keep_columns, or score with "
            "--ignore-unknown-columns (ignore_unknown_columns=True) to ignore them"
        )


def conform_frame(frame: pd.DataFrame, features: Sequence[Feature], first_row: int) -> None:
    """Make an Arrow-made frame look like training data, in place; check nullability.

    Missing strings arrive as ``None`` but scikit-learn's imputers look for ``np.nan``
    (and treat ``None`` as an unknown category); integer columns return to their
    trained dtype when no value is missing.
    """
    for feature in features:
        column = frame[feature.name]
        if feature.kind == DATETIME and pd.api.types.is_datetime64_any_dtype(column):
            # As training saw them: text (the calendar step parses it).
            column = column.astype(str).astype(object).where(column.notna(), np.nan)
            frame[feature.name] = column
        family = dtype_family(feature.dtype)
        values = column.to_numpy()
        missing = pd.isna(values)
        has_missing = bool(missing.any())
        if has_missing and not feature.nullable:
            raise BatchInputError(
                f"column '{feature.name}' is not nullable but row "
                f"{first_row + int(np.argmax(missing))} is null; "
                "fill it before scoring (no output was written)"
            )
        if family == CATEGORICAL and has_missing:
            values = values.astype(object, copy=True)
            values[missing] = np.nan
            frame[feature.name] = values
        elif family == NUMERIC and not has_missing and column.dtype != feature.dtype:
            if feature.dtype.lower().startswith(("int", "uint")) and np.all(
                np.floor(values) == values
            ):
                frame[feature.name] = column.astype(np.dtype(feature.dtype.lower()))


def _csv_batches(
    path: Path, features: Sequence[Feature], keep: Sequence[str], batch_rows: int
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    # Fix the types from the schema: per-block inference would flip int/float mid-file.
    types: dict[str, pa.DataType] = {}
    for feature in features:
        family = dtype_family(feature.dtype)
        types[feature.name] = {NUMERIC: pa.float64(), CATEGORICAL: pa.string(),
                               BOOLEAN: pa.bool_()}[family]
    header = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    names = header.schema.names
    header.close()
    wanted = [c for c in dict.fromkeys([*(f.name for f in features), *keep]) if c in names]
    # Numbers are read as text and converted here, so a placeholder (``?``, ``-``) is
    # missing, as ingest reads it for training (kfp_mlops.data.placeholders).
    numeric = [n for n, t in types.items() if t == pa.float64() and n in names]
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=max(1 << 20, batch_rows * 64)),
        convert_options=pacsv.ConvertOptions(
            column_types={k: pa.string() if k in numeric else v for k, v in types.items()
                          if k in names},
            include_columns=wanted,
            strings_can_be_null=True,
        ),
    )
    schema = pa.schema([header.schema.field(n) for n in names])
    # Report the declared types so check_schema judges what will be read.
    schema = pa.schema([pa.field(n, types.get(n, schema.field(n).type)) for n in names])
    return schema, (_numbers(batch, numeric, path) for batch in reader)


def _numbers(batch: pa.RecordBatch, numeric: Sequence[str], path: Path) -> pa.RecordBatch:
    """``batch`` with the ``numeric`` text columns as float64; placeholders are missing.

    A value that is neither a number nor a known placeholder is refused by name: the
    model never learnt that it means "missing".
    """
    from kfp_mlops.data.placeholders import PLACEHOLDERS, as_numbers, non_numbers

    arrays = list(batch.columns)
    for name in numeric:
        index = batch.schema.get_field_index(name)
        bad = [v for v in non_numbers(arrays[index]) if v.strip().lower() not in PLACEHOLDERS]
        if bad:
            raise BatchInputError(
                f"column '{name}' of {path} holds {bad[0]!r}, which is neither a number nor "
                f"a missing-value placeholder ({', '.join(sorted(PLACEHOLDERS - {''}))}); "
                "fix the value or leave the cell empty (nothing was written)"
            )
        arrays[index] = as_numbers(arrays[index])
    fields = [pa.field(f.name, pa.float64()) if f.name in numeric else f for f in batch.schema]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _open(
    path: Path, features: Sequence[Feature], keep: Sequence[str], batch_rows: int
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    if path.name.lower().endswith(CSV_SUFFIXES):
        return _csv_batches(path, features, keep, batch_rows)
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    columns = list(dict.fromkeys([*(f.name for f in features), *keep]))
    present = [c for c in columns if c in schema.names]
    return schema, parquet.iter_batches(batch_size=batch_rows, columns=present)


def _prediction_type(classes: Any, task: str) -> pa.DataType:
    if task != "classification" or classes is None:
        return pa.float64()
    kind = np.asarray(classes).dtype.kind
    return {"b": pa.bool_(), "i": pa.int64(), "u": pa.int64(), "f": pa.float64()}.get(
        kind, pa.string()
    )


def _prefetch(batches: Iterator[pa.RecordBatch], depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Decode the next batch in a thread while the model scores this one.

    Arrow releases the GIL while reading, so this hides most of the read time; at most
    ``depth + 1`` batches are in memory.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():  # never block forever: the consumer may have gone
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    worker = threading.Thread(target=fill, name="kfp-mlops-batch-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _prediction_array(predictions: Any, classes: Any, arrow_type: pa.DataType) -> pa.Array:
    if classes is None:
        return pa.array(np.asarray(predictions, dtype=np.float64), type=arrow_type)
    # Index into the class list: far cheaper than converting millions of Python strings.
    index = pd.Index(classes).get_indexer(np.asarray(predictions))
    return pa.array(list(classes), type=arrow_type).take(pa.array(index))


@dataclass
class Scorer:
    """A loaded model and the output layout for one input schema: the scoring loop.

    :meth:`prepare` checks the schema and fixes the output columns once; :meth:`write`
    scores any iterator of record batches (a file's, a shard's) into one Parquet file.
    """

    model: Any
    features: list[Feature]
    classes: Any
    keep: list[str]
    proba_names: list[str]
    prediction_column: str
    out_schema: pa.Schema

    @classmethod
    def prepare(
        cls,
        model: Any,
        metadata: Any,
        schema: pa.Schema,
        source: str,
        *,
        keep_columns: Sequence[str] = (),
        with_probabilities: bool = False,
        prediction_column: str = PREDICTION_COLUMN,
        ignore_unknown_columns: bool | None = None,
    ) -> Scorer:
        """Check ``schema`` (named ``source`` in errors) against the model; fix the output."""
        features = metadata.features
        classes: Any = getattr(model, "classes_", None)
        keep = list(keep_columns)
        contract = InputContract.for_model(metadata, ignore_unknown_columns)
        check_schema(schema, features, keep, source, contract)
        proba_names = [f"{PROBABILITY_PREFIX}{c}" for c in classes] if with_probabilities \
            else []
        clash = {prediction_column, *proba_names} & set(keep)
        if clash:
            raise BatchInputError(f"keep_columns {sorted(clash)} clash with output column names")
        out_schema = pa.schema(
            [_plain(schema.field(c)) for c in keep]
            + [pa.field(prediction_column, _prediction_type(classes, metadata.task))]
            + [pa.field(n, pa.float64()) for n in proba_names]
        )
        return cls(model, list(features), classes, keep, proba_names, prediction_column,
                   out_schema)

    @property
    def columns(self) -> list[str]:
        """The input columns the loop reads: the features, then ``keep_columns``."""
        return list(dict.fromkeys([*(f.name for f in self.features), *self.keep]))

    def write(
        self, batches: Iterator[pa.RecordBatch], path: str | Path, first_row: int = 0
    ) -> tuple[int, int]:
        """Score ``batches`` into the Parquet file ``path``: (rows, batches).

        ``first_row`` is the global number of the first row, for error messages.
        """
        names = [f.name for f in self.features]
        pred_type = self.out_schema.field(self.prediction_column).type
        rows = count = 0
        with parquet_writer(path, self.out_schema) as writer:
            for batch in _prefetch(batches):
                if batch.num_rows == 0:
                    continue
                frame = pa.Table.from_batches([batch]).select(names).to_pandas()
                conform_frame(frame, self.features, first_row + rows)
                arrays = [
                    _as_type(batch.column(batch.schema.get_field_index(c)),
                             self.out_schema.field(c).type)
                    for c in self.keep
                ]
                arrays.append(_prediction_array(self.model.predict(frame), self.classes,
                                                pred_type))
                if self.proba_names:
                    proba = np.asarray(self.model.predict_proba(frame), dtype=np.float64)
                    arrays.extend(pa.array(proba[:, j]) for j in range(proba.shape[1]))
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.out_schema))
                rows += batch.num_rows
                count += 1
        return rows, count


def _plain(field: pa.Field) -> pa.Field:
    """A kept column's output field: dictionary-encoded text written as its values."""
    if pa.types.is_dictionary(field.type):
        return field.with_type(field.type.value_type)
    return field


def _as_type(array: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    return array if array.type == arrow_type else array.cast(arrow_type)


def check_probabilities(metadata: Any, model: Any, with_probabilities: bool) -> None:
    """Refuse ``with_probabilities`` for a model that has no classes."""
    if with_probabilities and (metadata.task != "classification"
                               or getattr(model, "classes_", None) is None):
        raise BatchInputError(
            f"with_probabilities needs a classifier but the model is {metadata.task}"
        )


def score_parquet(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    batch_rows: int = 262_144,
    with_probabilities: bool = False,
    keep_columns: Sequence[str] = (),
    prediction_column: str = PREDICTION_COLUMN,
    ignore_unknown_columns: bool | None = None,
) -> BatchResult:
    """Score a Parquet (or CSV) file with a model folder into a predictions Parquet.

    The output holds ``keep_columns`` copied from the input (e.g. an id), the
    ``prediction`` column and, with ``with_probabilities``, one ``proba_<class>``
    column per class. Memory is bounded by ``batch_rows`` (and the input's row group
    size). Raises ``BatchInputError`` before scoring if the input does not fit. Input
    columns follow the online contract (:mod:`kfp_mlops.serving.contract`): the target
    and the columns training dropped are ignored, any other column that is neither a
    feature nor in ``keep_columns`` is refused unless ``ignore_unknown_columns`` (None:
    ``KFP_MLOPS_IGNORE_UNKNOWN_COLUMNS`` decides).
    """
    started = time.perf_counter()
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    model, metadata = load_model_folder(model_dir)
    check_probabilities(metadata, model, with_probabilities)
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"input {input_path} does not exist")
    keep = list(keep_columns)
    schema, batches = _open(input_path, metadata.features, keep, batch_rows)
    scorer = Scorer.prepare(
        model, metadata, schema, str(input_path), keep_columns=keep,
        with_probabilities=with_probabilities, prediction_column=prediction_column,
        ignore_unknown_columns=ignore_unknown_columns,
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    temp = output_path.with_name(f".{output_path.name}.{uuid.uuid4().hex}.tmp")
    try:
        rows, count = scorer.write(batches, temp)
        os.replace(temp, output_path)
    finally:
        if temp.exists():
            temp.unlink()
    return BatchResult(
        rows=rows,
        batches=count,
        output_path=str(output_path),
        columns=scorer.out_schema.names,
        seconds=time.perf_counter() - started,
    )
