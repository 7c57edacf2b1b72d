"""Statistics of a sharded dataset: one partial scan a shard, then one merge.

Each shard task folds its rows into the same accumulators a single scan uses
(:mod:`kfp_mlops.data.stats`) and saves them as a *partial*: a folder holding
``partial.json`` (counts, moments, min/max, category counts, histogram counts, the KLL
sketches), ``samples.npz`` (the coordinated value sample) and ``hashes.npy`` (the rows'
64-bit hashes, sorted). The merge gives what one scan of the whole table gives:

- exactly: rows, counts, missing and infinite values, min and max, histograms (every
  shard bins on the plan's global edges), category counts while the union of the
  shards' categories stays under ``category_cap``, the value sample (coordinated by row
  number), and duplicate rows (the shards' sorted hashes are merged bucket by bucket,
  a bounded slice of each file at a time);
- to floating-point rounding: mean and standard deviation (Chan's formula merges shards
  as it merges batches, in another order);
- within the sketch's bound: quantiles, when the table has more than ``sample_size``
  rows (0.28 % normalized rank error with 99 % confidence; exact below that).

A category column with more distinct values than the cap keeps the most frequent
values of the union, so its ``top_values`` may differ from a single scan's (which keeps
the first values it met); ``distinct_capped`` is set in both.

Each shard also hashes its content row group by row group (the hash a dataset version
uses), so the merged result carries the whole source's content hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfp_mlops.data.content_hash import ContentHasher
from kfp_mlops.data.kinds import NUMERIC_KINDS
from kfp_mlops.data.shards import ShardPlan, iter_shard_batches
from kfp_mlops.data.stats import (
    DEFAULT_BINS,
    DEFAULT_CATEGORY_CAP,
    DEFAULT_SAMPLE_SIZE,
    DEFAULT_TOP_K,
    Accumulator,
    DatasetStatistics,
    Histogram,
    Scan,
    StatisticsError,
    count_duplicates_sorted,
    finish_scan,
    first_pass,
    histogram_edges,
    new_accumulators,
    sample_rate,
)
from kfp_mlops.processes import pool_context, usable_cores

PARTIAL_FORMAT = "kfp-mlops-partial-scan-v1"
CONTENT_FORMAT = b"kfp-mlops-sharded-content-v1\n"
DUPLICATE_BUCKETS = 64  # 2**6: the merge holds 1/64 of all row hashes at a time


@dataclass
class ScanOptions:
    """What every shard and the merge must agree on."""

    bins: int = DEFAULT_BINS
    sample_size: int = DEFAULT_SAMPLE_SIZE
    category_cap: int = DEFAULT_CATEGORY_CAP
    top_k: int = DEFAULT_TOP_K
    seed: int = 0


def scan_shard(plan: ShardPlan, index: int, out_dir: str | Path,
               options: ScanOptions | None = None) -> dict[str, Any]:
    """Scan shard ``index`` of ``plan`` into a partial folder ``out_dir``; return its summary."""
    o = options or ScanOptions()
    shard = plan.shards[index]
    rate = sample_rate(o.sample_size, plan.rows)
    schema = plan.schema()
    accs = new_accumulators(schema, bins=o.bins, sampled=rate < 1.0, bounds=plan.bounds)
    group_hashes: list[str] = []
    hasher = ContentHasher(schema)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sampled_rows = pq.ParquetWriter(out / "rows.parquet", schema)

    def batches():
        nonlocal hasher
        for batch in iter_shard_batches(plan, index, row_groups=True):
            if batch is None:  # a row group ends: its content hash is done
                group_hashes.append(hasher.hexdigest())
                hasher = ContentHasher(schema)
                continue
            hasher.update(batch)
            yield batch

    def keep_rows(batch: pa.RecordBatch, keep: np.ndarray | None) -> None:
        table = pa.Table.from_batches([batch])
        if keep is not None:
            if not keep.any():
                return
            table = table.filter(keep)
        sampled_rows.write_table(table.cast(schema))

    with sampled_rows:
        rows, hashes = first_pass(
            batches(), accs, first_row=shard.first_row, rate=rate, seed=o.seed,
            category_cap=o.category_cap, count_duplicates=True, on_batch=keep_rows,
        )
    if rows != shard.rows:
        raise StatisticsError(f"shard {index} of {plan.source} has {rows} rows, but its files' "
                              f"footers said {shard.rows}; a file changed while it was read: "
                              "run again")
    row_hashes = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    row_hashes.sort()
    np.save(out / "hashes.npy", row_hashes)
    buckets = _bucket_bounds(row_hashes)
    np.savez(out / "samples.npz", **{n: np.concatenate(a.sample) if a.sample else np.empty(0)
                                     for n, a in accs.items() if a.kind in NUMERIC_KINDS})
    summary = {"format": PARTIAL_FORMAT, "index": index, "rows": rows,
               "content_hashes": group_hashes, "hash_buckets": buckets, "options": o.__dict__,
               "columns": {n: _acc_to_json(a) for n, a in accs.items()}}
    (out / "partial.json").write_text(json.dumps(summary))
    return {"index": index, "rows": rows, "row_groups": len(group_hashes)}


def _acc_to_json(acc: Accumulator) -> dict[str, Any]:
    out = {k: getattr(acc, k) for k in ("kind", "arrow_type", "count", "missing", "mean", "m2",
                                        "all_integral", "infinite", "capped")}
    out["min"], out["max"] = _value_to_json(acc.min), _value_to_json(acc.max)
    out["counter"] = list(acc.counter.items())
    if acc.histogram is not None:
        out["edges"] = acc.histogram.edges.tolist()
        out["counts"] = acc.histogram.counts.tolist()
    if acc.sketch is not None:
        out["sketch"] = base64.b64encode(acc.sketch.serialize()).decode()
    return out


def _value_to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    return value


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "datetime" in value:
            return datetime.fromisoformat(value["datetime"])
        return date.fromisoformat(value["date"])
    return value


@dataclass
class MergedScan:
    """The merged statistics and samples, and the source's content hash."""

    scan: Scan
    content_sha256: str
    row_groups: int
    row_files: list[Path]  # the shards' sampled rows, in source order
    shard_hashes: list[str]  # each shard's content hash (of its row groups' hashes)


def write_sampled_rows(merged: MergedScan, plan: ShardPlan, path: str | Path) -> int:
    """The sampled rows of every shard as one Parquet file (about ``sample_size`` rows)."""
    rows = 0
    with pq.ParquetWriter(path, plan.schema()) as writer:
        for part in merged.row_files:
            table = pq.read_table(part)
            writer.write_table(table)
            rows += table.num_rows
    return rows


def scan_all_shards(plan: ShardPlan, out_dir: str | Path, *, workers: int = 0,
                    options: ScanOptions | None = None,
                    on_done: Any = None) -> list[Path]:
    """Scan every shard into ``out_dir/shard-NNNNN`` with ``workers`` processes (0: a core each).

    The local shape of the fan-out: what ``dsl.ParallelFor`` runs as pods on a cluster.
    ``on_done(summary)`` is called as each shard finishes.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    folders = [Path(out_dir) / f"shard-{i:05d}" for i in range(len(plan.shards))]
    workers = max(1, min(workers or usable_cores(), len(folders)))
    if workers == 1:
        for i, folder in enumerate(folders):
            summary = scan_shard(plan, i, folder, options)
            if on_done:
                on_done(summary)
        return folders
    with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
        futures = [pool.submit(scan_shard, plan, i, f, options) for i, f in enumerate(folders)]
        for future in as_completed(futures):
            summary = future.result()
            if on_done:
                on_done(summary)
    return folders


def save_scan(scan: Scan, folder: str | Path) -> None:
    """Write a scan (statistics and drift samples) for a later task: see :func:`load_scan`."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "statistics.json").write_text(scan.stats.to_json())
    np.savez(out / "samples.npz", **scan.samples)


def load_scan(folder: str | Path) -> Scan:
    """Read a scan written by :func:`save_scan`."""
    stats = DatasetStatistics.from_json((Path(folder) / "statistics.json").read_text())
    with np.load(Path(folder) / "samples.npz") as npz:
        return Scan(stats=stats, samples={name: npz[name] for name in npz.files})


def merge_partials(plan: ShardPlan, partial_dirs: list[str | Path]) -> MergedScan:
    """Merge the shards' partial folders (any order) into the whole source's scan."""
    parts = [(Path(d), json.loads((Path(d) / "partial.json").read_text())) for d in partial_dirs]
    for folder, part in parts:
        if part.get("format") != PARTIAL_FORMAT:
            raise StatisticsError(f"{folder} is not a partial scan ({PARTIAL_FORMAT})")
    parts.sort(key=lambda p: p[1]["index"])
    found = [p["index"] for _, p in parts]
    if found != list(range(len(plan.shards))):
        raise StatisticsError(f"the partial scans cover shards {found}, but the plan has "
                              f"{len(plan.shards)}; a shard task is missing or ran twice")
    options = ScanOptions(**parts[0][1]["options"])
    accs: dict[str, Accumulator] = {}
    samples: dict[str, list[np.ndarray]] = {}
    for folder, part in parts:
        with np.load(folder / "samples.npz") as npz:
            for name in npz.files:
                samples.setdefault(name, []).append(npz[name])
        for name, data in part["columns"].items():
            accs[name] = _merge(accs.get(name), data, options.category_cap)
    for name, acc in accs.items():
        acc.sample = samples.get(name, [])
    rows = sum(p["rows"] for _, p in parts)
    histograms = _merged_histograms(accs, options.bins, plan.source)
    duplicates = _merged_duplicates([(folder / "hashes.npy", p["hash_buckets"])
                                     for folder, p in parts])
    scan = finish_scan(accs, rows, histograms, duplicates=duplicates, top_k=options.top_k,
                       sample_size=options.sample_size)
    group_hashes = [h for _, p in parts for h in p["content_hashes"]]
    total = hashlib.sha256(CONTENT_FORMAT)
    total.update(f"rows\t{rows}\n".encode())
    for name, arrow_type in plan.columns:
        total.update(f"{name}\t{arrow_type}\n".encode())
    for h in group_hashes:
        total.update(bytes.fromhex(h))
    shard_hashes = [hashlib.sha256(b"".join(bytes.fromhex(h) for h in p["content_hashes"]))
                    .hexdigest() for _, p in parts]
    return MergedScan(scan, total.hexdigest(), len(group_hashes),
                      [folder / "rows.parquet" for folder, _ in parts], shard_hashes)


def record_version(store: Any, plan: ShardPlan, merged: MergedScan) -> tuple[Any, bool]:
    """Record the scanned source as a sharded dataset version (kept in place)."""
    from kfp_mlops.data.versions import record_sharded_version

    shards = [{"index": s.index, "rows": s.rows, "content_sha256": h,
               "pieces": [{"path": p.path, "row_groups": [p.first, p.last], "rows": p.rows}
                          for p in s.pieces]}
              for s, h in zip(plan.shards, merged.shard_hashes, strict=True)]
    return record_sharded_version(
        store, source_uri=plan.source, content_sha256=merged.content_sha256,
        rows=merged.scan.stats.rows, columns=dict(plan.columns), shards=shards)


def _merge(acc: Accumulator | None, data: dict[str, Any], cap: int) -> Accumulator:
    other = Accumulator(data["kind"], data["arrow_type"], count=data["count"],
                         missing=data["missing"], mean=data["mean"], m2=data["m2"],
                         min=_value_from_json(data["min"]), max=_value_from_json(data["max"]),
                         all_integral=data["all_integral"], infinite=data["infinite"],
                         counter=Counter(dict(data["counter"])), capped=data["capped"])
    if "edges" in data:
        other.histogram = Histogram(np.asarray(data["edges"]))
        other.histogram.counts = np.asarray(data["counts"], dtype=np.int64)
    if "sketch" in data:
        from datasketches import kll_doubles_sketch

        other.sketch = kll_doubles_sketch.deserialize(base64.b64decode(data["sketch"]))
    if acc is None:
        return other
    total = acc.count + other.count
    if other.count:  # Chan et al., as stats._update merges a batch
        delta = other.mean - acc.mean
        acc.mean += delta * other.count / total
        acc.m2 += other.m2 + delta * delta * acc.count * other.count / total
    acc.count = total
    acc.missing += other.missing
    acc.infinite += other.infinite
    acc.all_integral = acc.all_integral and other.all_integral
    if other.min is not None:
        acc.min = other.min if acc.min is None else min(acc.min, other.min)
        acc.max = other.max if acc.max is None else max(acc.max, other.max)
    acc.counter.update(other.counter)
    acc.capped = acc.capped or other.capped
    if len(acc.counter) > cap:  # keep the most frequent of the union
        acc.counter = Counter(dict(acc.counter.most_common(cap)))
        acc.capped = True
    if other.histogram is not None:
        if acc.histogram is None:
            acc.histogram = other.histogram
        else:
            acc.histogram.counts += other.histogram.counts
    if other.sketch is not None:
        if acc.sketch is None:
            acc.sketch = other.sketch
        else:
            acc.sketch.merge(other.sketch)
    return acc


def _merged_histograms(accs: dict[str, Accumulator], bins: int,
                       source: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The shards' histograms added; their shared edges must be the merged min/max's."""
    out = {}
    for name, acc in accs.items():
        if acc.kind not in NUMERIC_KINDS or not acc.count:
            continue
        edges = histogram_edges(acc.kind, acc.min, acc.max, bins)
        if acc.histogram is None or not np.array_equal(acc.histogram.edges, edges):
            raise StatisticsError(
                f"column {name!r}: the Parquet statistics in {source} disagree with its values "
                f"(finite min/max {acc.min}, {acc.max}); rewrite the files with a current "
                "Parquet writer, or profile the data unsharded"
            )
        out[name] = (acc.histogram.edges, acc.histogram.counts)
    return out


def _bucket_bounds(sorted_hashes: np.ndarray) -> list[int]:
    """Where each of the DUPLICATE_BUCKETS buckets (by the hashes' top bits) starts and ends."""
    edges = np.arange(1, DUPLICATE_BUCKETS, dtype=np.uint64) << np.uint64(64 - 6)
    return [0, *np.searchsorted(sorted_hashes, edges).tolist(), len(sorted_hashes)]


def _merged_duplicates(parts: list[tuple[Path, list[int]]]) -> int:
    """Duplicate rows across all shards from their sorted hash files, a bucket at a time.

    Each shard recorded where its buckets start, so the merge reads one slice of each
    file a bucket (plain reads: the process holds 1/64 of the hashes, never the files).
    """
    headers = [np.load(path, mmap_mode="r").offset for path, _ in parts]  # .npy header size
    duplicates = 0
    for bucket in range(DUPLICATE_BUCKETS):
        pieces = []
        for (path, bounds), header in zip(parts, headers, strict=True):
            start, end = bounds[bucket], bounds[bucket + 1]
            pieces.append(np.fromfile(path, dtype=np.uint64, count=end - start,
                                      offset=header + 8 * start))
        merged = np.concatenate(pieces)
        merged.sort()
        duplicates += count_duplicates_sorted(merged)
    return duplicates

def finish_merge(plan: ShardPlan, partial_dirs: list[str | Path], statistics_path: str | Path,
                 scan_dir: str | Path, sample_path: str | Path) -> dict[str, Any]:
    """Merge and write what the tasks after the fan-out read; return a summary."""
    merged = merge_partials(plan, partial_dirs)
    Path(statistics_path).write_text(merged.scan.stats.to_json())
    save_scan(merged.scan, scan_dir)
    sampled = write_sampled_rows(merged, plan, sample_path)
    return {"rows": merged.scan.stats.rows, "columns": len(merged.scan.stats.columns),
            "shards": len(plan.shards), "sampled_rows": sampled,
            "content_sha256": merged.content_sha256}
