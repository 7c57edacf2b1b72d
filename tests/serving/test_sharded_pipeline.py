"""The sharded batch pipeline: its fan-out in the compiled IR, and a real kfp.local run."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from kfp_mlops.serving.batch import score_parquet
from kfp_mlops.serving.sharded import COMMIT_FILE, read_manifest, read_predictions
from tests.serving.test_sharded_scoring import penguin_rows, trained, whole_file, write_sharded

__all__ = ["trained"]  # the fixture, shared with the core tests


def _compiled(tmp_path, **kwargs) -> dict:
    from kfp import compiler

    from kfp_mlops.pipelines.batch import build_batch_pipeline
    from kfp_mlops.pipelines.cluster import ClusterConfig

    path = tmp_path / "sharded.yaml"
    compiler.Compiler().compile(
        build_batch_pipeline(ClusterConfig(), sharded=True, **kwargs), str(path))
    ir, platform = yaml.safe_load_all(path.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    # Every task reaches the store, the pods in the loop included.
    assert sorted(executors) == ["exec-collect-predictions", "exec-plan-shards",
                                 "exec-prepare-scoring", "exec-score-shard"]
    assert all(e["secretAsEnv"] for e in executors.values())
    return ir


def test_the_cluster_ir_fans_out_one_score_shard_per_shard(tmp_path):
    """The loop sits in a nested pipeline (one DAG task) that the commit follows.

    No task reads the loop's outputs (KFP before 2.14 cannot resolve them): the commit
    runs after the loop's DAG task and lists the output prefix the shards wrote.
    """
    ir = _compiled(tmp_path, parallelism=5)
    tasks = ir["root"]["dag"]["tasks"]
    assert not any("parameterIterator" in t for t in tasks.values())
    nested = tasks["score-loop"]
    assert nested["inputs"]["parameters"]["shards"]["taskOutputParameter"] == {
        "outputParameterKey": "Output", "producerTask": "plan-shards"}  # the shard indices
    assert nested["inputs"]["artifacts"]["job"]["taskOutputArtifact"] == {
        "outputArtifactKey": "job", "producerTask": "prepare-scoring"}
    (loop,) = ir["components"]["comp-score-loop"]["dag"]["tasks"].values()
    assert loop["iteratorPolicy"] == {"parallelismLimit": 5}
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--shards"
    inner = ir["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["score-shard"]
    assert inner["score-shard"]["inputs"]["parameters"]["shard"]["componentInputParameter"] \
        == loop["parameterIterator"]["itemInput"]
    collect = tasks["collect-predictions"]
    assert "score-loop" in collect["dependentTasks"]
    assert collect["inputs"]["parameters"]["results"]["runtimeValue"] == {"constant": []}
    # The pinned version, not the stage, reaches the shards and the commit.
    assert collect["inputs"]["parameters"]["model"]["taskOutputParameter"] == {
        "outputParameterKey": "model", "producerTask": "prepare-scoring"}
    assert {"plan-shards", "prepare-scoring", "collect-predictions"} <= set(tasks)


def test_the_local_shape_is_one_pool_task(tmp_path):
    from kfp import compiler

    from kfp_mlops.pipelines.batch import build_batch_pipeline

    path = tmp_path / "pool.yaml"
    compiler.Compiler().compile(build_batch_pipeline(sharded=True), str(path))
    tasks = yaml.safe_load(path.read_text())["root"]["dag"]["tasks"]
    assert set(tasks) == {"plan-shards", "prepare-scoring", "score-shards",
                          "collect-predictions"}
    with pytest.raises(ValueError, match="shards_as is 'threads'"):
        build_batch_pipeline(sharded=True, shards_as="threads")


@pytest.mark.slow
def test_kfp_mlops_score_on_a_folder_runs_the_sharded_pipeline(trained, tmp_path, capsys):
    from kfp_mlops.app.cli import main

    model_dir, store = trained
    rows = penguin_rows()
    source = write_sharded(tmp_path / "in", rows)
    out = tmp_path / "predictions"
    code = main(["score", "penguins@production", str(source), "--out", str(out),
                 "--keep-columns", "id,batch", "--probabilities", "--shard-rows", "300",
                 "--workers", "2", "--store", store, "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr()
    assert code == 0, err.err
    assert "shard 4/4:" in err.err  # a progress line per shard
    assert f"scored {len(rows):,} rows in 4 shards with penguins@1" in err.out + err.err
    manifest = read_manifest(str(out))
    assert manifest["model"] == "penguins@1" and manifest["rows"] == len(rows)
    assert sorted(p.name for p in out.iterdir()) == [COMMIT_FILE] + [
        f"part-{i:05d}.parquet" for i in range(4)]
    whole = score_parquet(model_dir, whole_file(source, tmp_path / "w.parquet"),
                          tmp_path / "w-out.parquet", with_probabilities=True,
                          keep_columns=["id", "batch"])
    assert read_predictions(str(out)).equals(pq.read_table(whole.output_path))

    # Data the model cannot score: refused before any shard, nothing committed.
    bad = write_sharded(tmp_path / "bad", rows.drop(columns=["island"]))
    code = main(["score", "penguins@production", str(bad), "--out", str(tmp_path / "o2"),
                 "--keep-columns", "id", "--store", store, "--runs-dir",
                 str(tmp_path / "runs"), "--output", "json"])
    err = capsys.readouterr().err
    assert code == 1 and "lacks feature columns ['island']" in err
    assert not (tmp_path / "o2").exists() or not list((tmp_path / "o2").iterdir())
    # A file whose columns differ: plan-shards names it; nothing scored or committed.
    odd = rows.assign(bill_length_mm=rows["bill_length_mm"].astype(str))
    pq.write_table(pa.Table.from_pandas(odd, preserve_index=False),
                   source / "batch=b" / "file-9.parquet")
    code = main(["score", "penguins@production", str(source), "--out", str(tmp_path / "o3"),
                 "--keep-columns", "id", "--store", store, "--runs-dir",
                 str(tmp_path / "runs"), "--output", "json"])
    err = capsys.readouterr().err
    assert code == 1 and "file-9.parquet" in err and "bill_length_mm" in err
    assert not (tmp_path / "o3").exists()
    assert json.loads(json.dumps(manifest))["source"] == str(source)
    assert pd.read_parquet(out / "part-00000.parquet")["id"].iloc[0] == 0


@pytest.mark.slow
def test_the_pods_shape_runs_each_shard_as_a_score_shard_task(trained, tmp_path):
    """The cluster shape's tasks, run by kfp.local: the nested loop, score-shard, the commit."""
    from kfp_mlops.app.local.runner import run_locally
    from kfp_mlops.pipelines.batch import build_batch_pipeline

    model_dir, store = trained
    rows = penguin_rows(1)
    source = write_sharded(tmp_path / "in", rows, files=3)
    out = tmp_path / "out"
    # A stale part from an earlier run with more shards: dropped at the commit.
    out.mkdir()
    pq.write_table(pq.read_table(next(source.rglob("*.parquet"))), out / "part-00009.parquet")
    run = run_locally(
        build_batch_pipeline(sharded=True, shards_as="pods", parallelism=2),
        {"data": str(source), "model": "penguins@production", "store": store,
         "output": str(out), "shard_rows": 150, "keep_columns": "id"},
        tmp_path / "runs",
    )
    assert run.succeeded, run.error
    shard_tasks = [name for name in run.tasks if name.endswith("/score-shard")]
    assert len(shard_tasks) == 3
    assert run.tasks["collect-predictions"].parameters["Output"] == len(rows)
    assert sorted(p.name for p in out.iterdir()) == [COMMIT_FILE] + [
        f"part-{i:05d}.parquet" for i in range(3)]
    assert read_predictions(str(out)).column("id").to_pylist() == rows["id"].tolist()
    assert read_manifest(str(out))["model"] == "penguins@1"
    del model_dir


def test_compile_sharded_writes_the_sharded_batch_pipeline(tmp_path):
    from kfp_mlops.pipelines.compile import compile_pipelines

    written = compile_pipelines(tmp_path, names=["batch-inference-sharded"])
    assert [p.name for p in written] == ["batch-inference-sharded.yaml",
                                         "batch-inference-sharded.k8s.yaml"]
    ir = next(yaml.safe_load_all(written[0].read_text()))
    assert ir["pipelineInfo"]["name"] == "kfp-mlops-batch-inference-sharded"
    assert ir["root"]["inputDefinitions"]["parameters"]["shard_rows"]["defaultValue"] \
        == 5_000_000


def test_score_wants_the_data_once(capsys):
    from kfp_mlops.app.cli import main

    assert main(["score", "m@1"]) == 1
    assert "give the data once" in capsys.readouterr().err
    assert main(["score", "m@1", "a.csv", "--data", "b.csv"]) == 1
    assert "give the data once" in capsys.readouterr().err
