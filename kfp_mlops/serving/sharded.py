"""Batch scoring of a sharded Parquet dataset: one part file of predictions per shard.

A sharded source (a folder, glob or ``s3://bucket/prefix/`` of Parquet files, see
:mod:`kfp_mlops.data.shards`) is planned into shards of bounded rows; each shard is
scored by :class:`kfp_mlops.serving.batch.Scorer` (the loop of ``score_parquet``) into
``part-NNNNN.parquet`` under an output folder or prefix. The layout is Spark's and
Hadoop's::

    OUT/part-00000.parquet   shard 0's predictions, rows in source order
    OUT/part-00001.parquet
    OUT/_SUCCESS             written last: the commit (a JSON manifest)

Readers that know the layout (Spark, ``pyarrow.dataset``, pandas, this suite's own
:func:`plan_shards`) skip ``_``-prefixed files; a reader that waits for ``_SUCCESS``
never sees a half-written result. ``_SUCCESS`` holds the parts, their rows, the model
version and the source, as the S3A committers' JSON ``_SUCCESS`` does.

Idempotence: a shard's part has a fixed name and is replaced whole (a rename locally,
one PUT on S3), so a retried shard replaces its part and never adds rows. Scoring
starts by removing an earlier ``_SUCCESS`` from the output (:func:`uncommit`, called by
:func:`score_shards` and :func:`kfp_mlops.serving.steps.prepare_scoring`),
and the commit (:func:`collect_predictions`) checks every part's row count against the
plan and removes parts the plan does not name (a former run's with more shards).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.shards import ShardPlan, iter_shard_batches
from kfp_mlops.errors import KfpMlopsError
from kfp_mlops.processes import pool_context, usable_cores
from kfp_mlops.serving.batch import (
    PREDICTION_COLUMN,
    BatchInputError,
    Scorer,
    check_probabilities,
)

COMMIT_FILE = "_SUCCESS"
MANIFEST_FORMAT = "kfp-mlops-predictions-v1"
PART = re.compile(r"^part-(\d{5,})\.parquet$")

log = logging.getLogger(__name__)


class PredictionsError(KfpMlopsError, RuntimeError):
    """Sharded predictions cannot be written or committed; nothing was committed."""


def part_name(shard: int) -> str:
    """The part file of ``shard``: ``part-00003.parquet``."""
    return f"part-{shard:05d}.parquet"


def default_output(store: str, run_id: str) -> str:
    """Where a run's predictions go when no output is given: ``STORE/predictions/RUN``."""
    return f"{store.rstrip('/')}/predictions/{run_id}"


class PredictionsOutput:
    """An output folder (local path) or prefix (``s3://bucket/prefix``) of part files."""

    def __init__(self, uri: str):
        if not uri.strip():
            raise PredictionsError("the output is empty; give a folder or s3://bucket/prefix/")
        from kfp_mlops.store_uri import resolve_store_uri

        # The default output is STORE/predictions/RUN, and the cluster's default store
        # names {namespace} (kfp_mlops.store_uri): fill it in as open_store does.
        uri = resolve_store_uri(uri)
        self.uri = uri.rstrip("/")
        self.store = None
        if uri.startswith("s3://"):
            from kfp_mlops.storage import open_store

            parsed = urlparse(uri)
            self.store = open_store(f"s3://{parsed.netloc}")
            self.prefix = parsed.path.strip("/")
            if not self.prefix:
                raise PredictionsError(f"output {uri!r} is a whole bucket; give a prefix "
                                       "such as s3://bucket/predictions/run-1/")
        else:
            self.folder = Path(uri).expanduser().resolve()

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def shown(self, name: str) -> str:
        """The full URI of ``name`` in the output, for messages."""
        return f"{self.uri}/{name}"

    def names(self) -> list[str]:
        """The files directly in the output, sorted."""
        if self.store is not None:
            base = f"{self.prefix}/"
            return sorted(k[len(base):] for k in self.store.list(base)
                          if "/" not in k[len(base):])
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def temp_file(self, name: str) -> Path:
        """A local file to write ``name`` into before :meth:`put` (beside it when local)."""
        if self.store is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            return self.folder / f".{name}.{uuid.uuid4().hex}.tmp"
        return Path(tempfile.gettempdir()) / f"kfp-mlops-{uuid.uuid4().hex}-{name}"

    def put(self, name: str, local: Path) -> None:
        """Move ``local`` into the output as ``name``, replacing it whole."""
        try:
            if self.store is None:
                os.replace(local, self.folder / name)  # atomic within the folder
            else:
                self.store.upload_file(self._key(name), local)  # one PUT: atomic
        finally:
            local.unlink(missing_ok=True)

    def put_bytes(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``name``, replacing it whole."""
        local = self.temp_file(name)
        local.write_bytes(data)
        self.put(name, local)

    def get_bytes(self, name: str) -> bytes:
        """Read ``name``."""
        if self.store is not None:
            return self.store.get_bytes(self._key(name))
        return (self.folder / name).read_bytes()

    def remove(self, name: str) -> None:
        """Remove ``name`` (no error if it is absent)."""
        if self.store is not None:
            self.store.delete(self._key(name))
        else:
            (self.folder / name).unlink(missing_ok=True)

    def rows_of(self, name: str) -> tuple[int, list[str]]:
        """A part's row count and column names, from its footer."""
        if self.store is None:
            parquet = pq.ParquetFile(self.folder / name)
            return parquet.metadata.num_rows, parquet.schema_arrow.names
        handle = self.store.open_file(self._key(name))
        try:
            parquet = pq.ParquetFile(handle, pre_buffer=False)
            return parquet.metadata.num_rows, parquet.schema_arrow.names
        finally:
            handle.close()

    def read_file(self, name: str) -> pa.Table:
        """Read one file of the output as a table."""
        if self.store is None:
            return pq.read_table(self.folder / name)
        handle = self.store.open_file(self._key(name))
        try:
            return pq.ParquetFile(handle).read()
        finally:
            handle.close()


@dataclass(frozen=True)
class ScoringOptions:
    """The output's columns: what ``score_parquet`` takes besides the files."""

    keep_columns: tuple[str, ...] = ()
    with_probabilities: bool = False
    prediction_column: str = PREDICTION_COLUMN
    ignore_unknown_columns: bool | None = None
    batch_rows: int = 262_144

    @classmethod
    def from_parameters(cls, keep_columns: str | Sequence[str] = (), **others: Any
                        ) -> ScoringOptions:
        """From component parameters: ``keep_columns`` may be comma-separated."""
        if isinstance(keep_columns, str):
            keep_columns = [c.strip() for c in keep_columns.split(",") if c.strip()]
        return cls(keep_columns=tuple(keep_columns), **others)


@dataclass
class ShardScore:
    """What scoring one shard wrote."""

    shard: int
    rows: int
    part: str
    seconds: float = 0.0

    def to_json(self) -> str:
        """As one JSON object (the ``score-shard`` component's output)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ShardScore:
        """Rebuild from :meth:`to_json`."""
        return cls(**json.loads(text))


@dataclass
class ShardedResult:
    """A committed sharded scoring: the manifest written to ``_SUCCESS``, summed up."""

    output: str
    rows: int
    shards: int
    model: str
    source: str
    seconds: float = 0.0
    parts: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """One line for logs and the CLI."""
        return (f"{self.rows:,} rows in {self.shards} shard{'s' if self.shards != 1 else ''} "
                f"scored with {self.model} -> {self.output}/ ({COMMIT_FILE} written)")


def _input_schema(plan: ShardPlan, scorer_columns: Sequence[str]) -> pa.Schema:
    """The plan's schema without partition keys nobody asked for.

    Hive partition keys are folder names, not columns the data's writer chose: a key that
    is neither a feature nor a kept column is ignored rather than refused as unknown.
    """
    schema = plan.schema()
    wanted = set(scorer_columns)
    return pa.schema([f for f in schema if f.name not in plan.partition_keys
                      or f.name in wanted])


def prepare_scorer(model: Any, metadata: Any, plan: ShardPlan,
                   options: ScoringOptions) -> Scorer:
    """Check the plan's schema against the model once, before any shard is scored."""
    check_probabilities(metadata, model, options.with_probabilities)
    names = {f.name for f in metadata.features} | set(options.keep_columns)
    return Scorer.prepare(
        model, metadata, _input_schema(plan, sorted(names)), plan.source,
        keep_columns=options.keep_columns, with_probabilities=options.with_probabilities,
        prediction_column=options.prediction_column,
        ignore_unknown_columns=options.ignore_unknown_columns,
    )


def uncommit(output: PredictionsOutput) -> None:
    """Remove an earlier ``_SUCCESS``: from here on the output is being written."""
    output.remove(COMMIT_FILE)


def _decoded(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Dictionary-encoded text as plain text: the arrays a single-file read gives."""
    for batch in batches:
        if not any(pa.types.is_dictionary(t) for t in batch.schema.types):
            yield batch
            continue
        arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c
                  for c in batch.columns]
        yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def score_shard(scorer: Scorer, plan: ShardPlan, shard: int, output: PredictionsOutput,
                batch_rows: int = 262_144) -> ShardScore:
    """Score one shard of ``plan`` into its part file, replacing an earlier one."""
    if not 0 <= shard < len(plan.shards):
        raise PredictionsError(f"shard {shard} is not in the plan of {plan.source} "
                               f"(shards 0-{len(plan.shards) - 1})")
    started = time.perf_counter()
    item = plan.shards[shard]
    name = part_name(shard)
    temp = output.temp_file(name)
    batches = _decoded(iter_shard_batches(plan, shard, scorer.columns, batch_rows=batch_rows))
    try:
        rows, _ = scorer.write(batches, temp, first_row=item.first_row)
    except BatchInputError as exc:
        temp.unlink(missing_ok=True)
        files = sorted({p.path for p in item.pieces})
        raise BatchInputError(f"shard {shard} of {plan.source} ({', '.join(files)}): {exc}"
                              ) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if rows != item.rows:
        temp.unlink(missing_ok=True)
        raise PredictionsError(
            f"shard {shard} of {plan.source} read {rows} rows but the plan lists {item.rows}: "
            "the files changed after planning; plan again and rerun")
    output.put(name, temp)
    return ShardScore(shard, rows, output.shown(name), time.perf_counter() - started)


# The scorer, plan and output of a pool worker: set in the parent before a fork (and
# inherited), or by _init_worker where processes are spawned.
_WORKER: tuple[Scorer, ShardPlan, PredictionsOutput, int] | None = None


def _init_worker(model_dir: str, plan_json: str, output: str, options: ScoringOptions) -> None:
    global _WORKER
    if _WORKER is None:
        from kfp_mlops.model.package import load_model_folder

        plan = ShardPlan.from_json(plan_json)
        model, metadata = load_model_folder(model_dir)
        _WORKER = (prepare_scorer(model, metadata, plan, options), plan,
                   PredictionsOutput(output), options.batch_rows)


def _pool_job(shard: int) -> ShardScore:
    """One shard in a pool worker, with one OpenMP thread: the pool uses the cores."""
    from threadpoolctl import threadpool_limits

    scorer, plan, output, batch_rows = _WORKER  # type: ignore[misc]
    with threadpool_limits(limits=1, user_api="openmp"):
        return score_shard(scorer, plan, shard, output, batch_rows)


def score_shards(
    model_dir: str | Path,
    plan: ShardPlan,
    output: str,
    options: ScoringOptions | None = None,
    *,
    shards: Sequence[int] | None = None,
    workers: int = 0,
    on_shard: Callable[[ShardScore], None] | None = None,
) -> list[ShardScore]:
    """Score ``shards`` (default: all) of ``plan`` over a pool of ``workers`` processes.

    The model is loaded and the schema checked once here, before any shard is scored;
    forked workers inherit both (spawned ones load the model once each). ``workers`` 0
    is every usable core, capped at the number of shards; 1 scores in this process.
    ``on_shard`` is called in this process as each shard finishes. Does not commit: see
    :func:`collect_predictions`.
    """
    global _WORKER
    from kfp_mlops.model.package import load_model_folder

    options = options or ScoringOptions()
    todo = list(range(len(plan.shards))) if shards is None else list(shards)
    model, metadata = load_model_folder(model_dir)
    scorer = prepare_scorer(model, metadata, plan, options)
    out = PredictionsOutput(output)
    uncommit(out)
    workers = min(workers if workers > 0 else usable_cores(), max(len(todo), 1))
    done: list[ShardScore] = []
    if workers <= 1:
        for shard in todo:
            done.append(score_shard(scorer, plan, shard, out, options.batch_rows))
            if on_shard:
                on_shard(done[-1])
        return done
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = pool_context()
    _WORKER = (scorer, plan, out, options.batch_rows) \
        if context.get_start_method() == "fork" else None
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(str(model_dir), plan.to_json(), output, options)
                                 ) as pool:
            futures = [pool.submit(_pool_job, shard) for shard in todo]
            try:
                for future in as_completed(futures):
                    done.append(future.result())
                    if on_shard:
                        on_shard(done[-1])
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        _WORKER = None
    return sorted(done, key=lambda s: s.shard)


def collect_predictions(plan: ShardPlan, output: str, model: str,
                        scores: Sequence[ShardScore] = ()) -> ShardedResult:
    """Commit: check every part against the plan, drop stale parts, write ``_SUCCESS``.

    Each part's row count is read from its footer and must equal its shard's; a missing
    or short part raises :class:`PredictionsError` and nothing is committed. Parts the
    plan does not name (left by an earlier run with more shards) and temporary files
    are removed before ``_SUCCESS`` is written, last.
    """
    out = PredictionsOutput(output)
    present = out.names()
    expected = {part_name(s.index): s for s in plan.shards}
    missing = sorted(set(expected) - set(present))
    if missing:
        raise PredictionsError(
            f"{out.uri} lacks {len(missing)} part(s) of {len(expected)}: {missing[:5]}; "
            "score those shards (rerun the failed tasks) before committing")
    parts, columns = [], None
    for name, shard in sorted(expected.items()):
        rows, names = out.rows_of(name)
        if rows != shard.rows:
            raise PredictionsError(
                f"{out.shown(name)} holds {rows} rows but shard {shard.index} has {shard.rows}; "
                "rescore that shard")
        if columns is None:
            columns = names
        elif names != columns:
            raise PredictionsError(f"{out.shown(name)} has columns {names}, the other parts "
                                   f"{columns}: parts of different runs; rescore every shard")
        parts.append({"name": name, "shard": shard.index, "first_row": shard.first_row,
                      "rows": rows})
    for name in present:
        stale = (PART.match(name) and name not in expected) or \
            (name.startswith(".part-") and name.endswith(".tmp"))
        if stale:
            out.remove(name)
            log.info("removed %s: not a part of this run", out.shown(name))
    seconds = sum(s.seconds for s in scores)
    result = ShardedResult(output=out.uri, rows=sum(p["rows"] for p in parts),
                           shards=len(parts), model=model, source=plan.source,
                           seconds=seconds, parts=parts)
    manifest = {"format": MANIFEST_FORMAT, "committed_at": datetime.now(UTC).isoformat(),
                "source": plan.source, "model": model, "rows": result.rows,
                "shards": result.shards, "shard_rows": plan.shard_rows,
                "columns": columns or [], "parts": parts}
    out.put_bytes(COMMIT_FILE, json.dumps(manifest, indent=1).encode())
    return result


def read_manifest(output: str) -> dict[str, Any]:
    """The committed manifest (``_SUCCESS``); :class:`PredictionsError` if uncommitted."""
    out = PredictionsOutput(output)
    if COMMIT_FILE not in out.names():
        raise PredictionsError(f"{out.uri} has no {COMMIT_FILE}: not committed (a run is "
                               "writing it, or failed); wait for it or rerun")
    return json.loads(out.get_bytes(COMMIT_FILE))


def read_predictions(output: str) -> pa.Table:
    """Every committed part, in shard order, as one table (rows in source order)."""
    manifest = read_manifest(output)
    out = PredictionsOutput(output)
    return pa.concat_tables([out.read_file(p["name"]) for p in manifest["parts"]])


def score_sharded(
    model_dir: str | Path,
    plan: ShardPlan,
    output: str,
    options: ScoringOptions | None = None,
    *,
    model: str = "",
    workers: int = 0,
    on_shard: Callable[[ShardScore], None] | None = None,
) -> ShardedResult:
    """Score every shard of ``plan`` and commit: :func:`score_shards` then collect."""
    started = time.perf_counter()
    scores = score_shards(model_dir, plan, output, options, workers=workers,
                          on_shard=on_shard)
    result = collect_predictions(plan, output, model or str(model_dir), scores)
    result.seconds = time.perf_counter() - started
    return result
