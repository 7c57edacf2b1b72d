"""Sharded batch scoring: one part per shard, a _SUCCESS commit, equal to single-file scoring."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlops.data.shards import ShardError, plan_shards
from kfp_mlops.data.sources import load_table
from kfp_mlops.model.package import write_model_folder
from kfp_mlops.model.registry import Registry
from kfp_mlops.model.settings import TrainingSettings
from kfp_mlops.model.train import train_model
from kfp_mlops.serving.batch import BatchInputError, score_parquet
from kfp_mlops.serving.sharded import (
    COMMIT_FILE,
    PredictionsError,
    ScoringOptions,
    collect_predictions,
    read_manifest,
    read_predictions,
    score_shard,
    score_sharded,
    score_shards,
)
from kfp_mlops.storage import open_store

# As local runs set it (kfp_mlops.app.local.runner.LOCAL_TASK_ENV): OpenMP threads that
# spin between regions starve the others on a busy 2-core machine (18 s instead of 0.6 s
# for a test here). Read when OpenMP starts: no effect if an earlier test started it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A penguins model trained by the suite, as a folder and published in a store."""
    from threadpoolctl import threadpool_limits

    root = tmp_path_factory.mktemp("trained")
    # One OpenMP thread: no spinning threads if an earlier test started OpenMP (above).
    with threadpool_limits(limits=1, user_api="openmp"):
        model, metadata = train_model(load_table("penguins"), TrainingSettings(
            target="species", task="classification"))
    write_model_folder(model, metadata, root / "m")
    registry = Registry(open_store(str(root / "store")))
    registry.publish("penguins", root / "m", metadata, stage="production", blessed=True)
    return root / "m", str(root / "store")


def penguin_rows(copies: int = 3) -> pd.DataFrame:
    rows = load_table("penguins").drop(columns=["species"])
    rows = pd.concat([rows] * copies, ignore_index=True)
    rows.insert(0, "id", np.arange(len(rows)))
    return rows


def write_sharded(folder: Path, rows: pd.DataFrame, files: int = 4,
                  partitions: tuple[str, ...] = ("a", "b")) -> Path:
    """``rows`` split over hive folders ``batch=X`` and files of 60-row row groups."""
    chunks = np.array_split(np.arange(len(rows)), files)
    for i, chunk in enumerate(chunks):
        part = folder / f"batch={partitions[i * len(partitions) // files]}"
        part.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(rows.iloc[chunk], preserve_index=False)
        pq.write_table(table, part / f"file-{i}.parquet", row_group_size=60)
    return folder


def whole_file(folder: Path, path: Path) -> Path:
    """Every file under ``folder`` concatenated into one (sorted names), with the hive key."""
    tables = []
    for file in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(file, partitioning=None)
        key, value = file.parent.name.split("=")
        tables.append(table.append_column(key, pa.array([value] * len(table), pa.string())))
    pq.write_table(pa.concat_tables(tables), path)
    return path


def test_sharded_predictions_equal_single_file_scoring_row_by_row(trained, tmp_path):
    model_dir, _ = trained
    source = write_sharded(tmp_path / "in", penguin_rows())
    plan = plan_shards(str(source), shard_rows=250)
    assert len(plan.shards) >= 4 and plan.partition_keys == ["batch"]
    options = ScoringOptions(keep_columns=("id", "batch"), with_probabilities=True,
                             batch_rows=100)
    seen = []
    result = score_sharded(model_dir, plan, str(tmp_path / "out"), options, model="m",
                           workers=2, on_shard=seen.append)
    assert result.rows == plan.rows and result.shards == len(plan.shards)
    assert sorted(s.shard for s in seen) == list(range(len(plan.shards)))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [COMMIT_FILE] + [f"part-{i:05d}.parquet" for i in range(len(plan.shards))]

    whole = score_parquet(model_dir, whole_file(source, tmp_path / "whole.parquet"),
                          tmp_path / "whole-out.parquet", with_probabilities=True,
                          keep_columns=["id", "batch"])
    expected = pq.read_table(whole.output_path)
    got = read_predictions(str(tmp_path / "out"))
    assert got.schema == expected.schema
    assert got.equals(expected)  # every row, in order, to the bit
    assert got.column("batch").to_pylist()[:3] == ["a"] * 3  # the hive key, kept as asked
    manifest = read_manifest(str(tmp_path / "out"))
    assert manifest["rows"] == plan.rows and manifest["source"] == str(source)
    assert [p["rows"] for p in manifest["parts"]] == [s.rows for s in plan.shards]


def test_partition_keys_not_asked_for_are_ignored_not_refused(trained, tmp_path):
    model_dir, _ = trained
    plan = plan_shards(str(write_sharded(tmp_path / "in", penguin_rows(1))), shard_rows=200)
    score_sharded(model_dir, plan, str(tmp_path / "out"), ScoringOptions(keep_columns=("id",)),
                  workers=1)
    assert read_predictions(str(tmp_path / "out")).column_names == ["id", "prediction"]


def test_a_file_with_another_schema_fails_naming_it_before_anything_is_written(trained,
                                                                              tmp_path):
    rows = penguin_rows(1)
    source = write_sharded(tmp_path / "in", rows)
    bad = rows.assign(bill_length_mm=rows["bill_length_mm"].astype(str))
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False),
                   tmp_path / "in" / "batch=b" / "file-9.parquet")
    with pytest.raises(ShardError, match=r"file-9\.parquet"):
        plan_shards(str(source), shard_rows=200)


def test_data_that_does_not_fit_the_model_fails_before_any_shard(trained, tmp_path):
    model_dir, _ = trained
    rows = penguin_rows(1).drop(columns=["island"])
    plan = plan_shards(str(write_sharded(tmp_path / "in", rows)), shard_rows=200)
    with pytest.raises(BatchInputError, match=r"lacks feature columns \['island'\]"):
        score_shards(model_dir, plan, str(tmp_path / "out"),
                     ScoringOptions(keep_columns=("id",)), workers=2)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_retried_shard_replaces_its_part_and_does_not_duplicate_rows(trained, tmp_path):
    from kfp_mlops.model.package import load_model_folder
    from kfp_mlops.serving.sharded import PredictionsOutput, prepare_scorer

    model_dir, _ = trained
    plan = plan_shards(str(write_sharded(tmp_path / "in", penguin_rows())), shard_rows=250)
    out = str(tmp_path / "out")
    options = ScoringOptions(keep_columns=("id",))
    scores = score_shards(model_dir, plan, out, options, workers=1)
    first = pq.read_table(tmp_path / "out" / "part-00001.parquet")
    # A pod retried after it wrote its part (or a task rerun): the same part, replaced.
    model, metadata = load_model_folder(model_dir)
    scorer = prepare_scorer(model, metadata, plan, options)
    again = score_shard(scorer, plan, 1, PredictionsOutput(out))
    assert again.rows == plan.shards[1].rows
    assert pq.read_table(tmp_path / "out" / "part-00001.parquet").equals(first)
    result = collect_predictions(plan, out, "m", scores)
    assert result.rows == plan.rows
    ids = read_predictions(out).column("id").to_pylist()
    assert ids == list(range(plan.rows))  # each row once, in order
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_commit_refuses_a_missing_part_and_drops_stale_ones(trained, tmp_path):
    model_dir, _ = trained
    out = tmp_path / "out"
    rows = penguin_rows()
    many = plan_shards(str(write_sharded(tmp_path / "in", rows)), shard_rows=150)
    score_sharded(model_dir, many, str(out), ScoringOptions(keep_columns=("id",)), workers=1)
    # The same output scored again with bigger shards: fewer parts than before.
    few = plan_shards(str(tmp_path / "in"), shard_rows=400)
    assert len(few.shards) < len(many.shards)
    scores = score_shards(model_dir, few, str(out), ScoringOptions(keep_columns=("id",)),
                          workers=1)
    assert not (out / COMMIT_FILE).exists()  # uncommitted while being rewritten
    (out / "part-00000.parquet").unlink()
    with pytest.raises(PredictionsError, match=r"lacks 1 part\(s\).*part-00000\.parquet"):
        collect_predictions(few, str(out), "m", scores)
    assert not (out / COMMIT_FILE).exists()
    score_shards(model_dir, few, str(out), ScoringOptions(keep_columns=("id",)), shards=[0],
                 workers=1)
    collect_predictions(few, str(out), "m", scores)
    assert sorted(p.name for p in out.iterdir()) == [COMMIT_FILE] + [
        f"part-{i:05d}.parquet" for i in range(len(few.shards))]
    assert read_predictions(str(out)).column("id").to_pylist() == list(range(len(rows)))


def test_an_s3_prefix_in_and_out(trained, tmp_path):
    from tests.s3server import s3_server

    model_dir, _ = trained
    rows = penguin_rows(1)
    local = write_sharded(tmp_path / "in", rows, files=3)
    with s3_server() as server:
        store = open_store(server.uri())
        for path in sorted(local.rglob("*.parquet")):
            store.upload_file(f"in/{path.relative_to(local).as_posix()}", path)
        plan = plan_shards(f"s3://{server.bucket}/in/", shard_rows=150)
        out = f"s3://{server.bucket}/predictions/run-1/"
        result = score_sharded(model_dir, plan, out, ScoringOptions(keep_columns=("id",)),
                               workers=2)
        assert result.rows == len(rows)
        keys = store.list("predictions/run-1/")
        assert keys == [f"predictions/run-1/{n}" for n in [COMMIT_FILE] + [
            f"part-{i:05d}.parquet" for i in range(len(plan.shards))]]
        manifest = json.loads(store.get_bytes(f"predictions/run-1/{COMMIT_FILE}"))
        assert manifest["rows"] == len(rows)
        got = read_predictions(out).to_pandas()
    assert got["id"].tolist() == rows["id"].tolist()
    whole = score_parquet(model_dir, whole_file(local, tmp_path / "w.parquet"),
                          tmp_path / "w-out.parquet", keep_columns=["id"],
                          ignore_unknown_columns=True)
    assert got["prediction"].tolist() == pd.read_parquet(whole.output_path)["prediction"].tolist()
