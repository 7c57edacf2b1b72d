"""`kfp-mlops monitor` on a Parquet prefix: the sharded pipeline, run with kfp.local.

A model is trained, then one drifted batch is monitored twice: as a hive-partitioned
folder (sharded: plan-shards -> scan-shards -> validate-data + detect-drift-sharded ->
monitor) and as one Parquet file (the monitoring pipeline). Both must decide the same.
The cluster form's fan-out is read from the compiled IR.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from kfp_mlops.app.cli import main
from kfp_mlops.data.generator import make_batch

pytestmark = pytest.mark.slow


def cli_json(capsys, *argv):
    code = main([*argv, "--output", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def executor_output(runs, run_dir, task):
    return json.loads((runs / run_dir / task / "executor_output.json").read_text())


def test_a_partitioned_batch_is_monitored_in_shards_as_one_file_is(tmp_path, capsys):
    store, runs = str(tmp_path / "store"), tmp_path / "runs"
    common = ["--model-name", "loans", "--store", store, "--runs-dir", str(runs)]
    make_batch("reference", 1200, 1).to_csv(tmp_path / "train.csv", index=False)
    code, trained, _ = cli_json(capsys, "run", "--data", str(tmp_path / "train.csv"),
                                "--target", "default", *common)
    assert code == 0, trained

    batch = make_batch("drifted", 3000, 5)
    batch.loc[::3, "default"] = None  # labels for two rows in three (one in three pending)
    whole = []
    for i, day in enumerate(["2026-11-01", "2026-11-02", "2026-11-03"]):
        part = batch.iloc[i * 1000:(i + 1) * 1000]
        folder = tmp_path / "batch" / f"day={day}"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       folder / "part-0.parquet", row_group_size=400)
        whole.append(part.assign(day=day))
    import pandas as pd

    pq.write_table(pa.Table.from_pandas(pd.concat(whole), preserve_index=False),
                   tmp_path / "whole.parquet")

    code, sharded, err = cli_json(capsys, "monitor", "--data", str(tmp_path / "batch"),
                                  "--shard-rows", "700", *common)
    assert "kfp-mlops-sharded-monitoring" in sharded["run_dir"], err
    code_single, single, _ = cli_json(capsys, "monitor", "--data",
                                      str(tmp_path / "whole.parquet"), *common)
    # Monitoring reports data quality in its decision; the check is no gate there.
    assert code == code_single == 0, json.dumps(sharded, indent=1)
    assert sharded["gates"] == single["gates"] == {}
    # The 1000 rows without a label are labels pending (issue 30), not a data error.
    assert "data quality" not in sharded["monitor"]["reason"]
    assert "realized accuracy" in sharded["monitor"]["quality"]
    assert sharded["monitor"]["quality"] == single["monitor"]["quality"]

    a, b = sharded["monitor"], single["monitor"]
    assert a["drift"] is b["drift"] is True
    assert a["retrain"] == b["retrain"] and a["reason"] == b["reason"]
    plan = executor_output(runs, sharded["run_dir"], "plan-shards")
    assert plan["parameterValues"]["Output"] == [0, 1, 2, 3, 4, 5]
    assert plan["artifacts"]["plan"]["artifacts"][0]["metadata"]["rows"] == 3000
    # The sample is every row here (3000 < 100,000): the same labelled rows and metrics.
    got = executor_output(runs, sharded["run_dir"], "monitor")
    want = executor_output(runs, single["run_dir"], "monitor")
    got_metrics = got["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    want_metrics = want["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert got_metrics["labelled_rows"] == 2000
    assert got_metrics == pytest.approx(want_metrics)


def test_the_cluster_form_fans_out_one_pod_per_shard(tmp_path):
    """The loop is a nested pipeline (one DAG task) that merge-scans follows.

    merge-scans reads the partials from the store's fan-in prefix, not the loop's
    outputs, which KFP before 2.14 cannot resolve (docs/cluster.md).
    """
    from kfp import compiler

    from kfp_mlops.pipelines.cluster import ClusterConfig
    from kfp_mlops.pipelines.sharded_monitoring import build_sharded_monitoring_pipeline

    path = tmp_path / "sharded.yaml"
    compiler.Compiler().compile(build_sharded_monitoring_pipeline(ClusterConfig(),
                                                                  parallelism=16), str(path))
    ir = next(yaml.safe_load_all(path.read_text()))  # the pipeline spec, then the platform spec
    root = ir["root"]["dag"]["tasks"]
    assert not [n for n, t in root.items() if "iteratorPolicy" in t]
    assert root["scan-loop"]["inputs"]["parameters"]["shards"]["taskOutputParameter"] == {
        "outputParameterKey": "Output", "producerTask": "plan-shards"}
    (loop,) = ir["components"]["comp-scan-loop"]["dag"]["tasks"].values()
    assert loop["iteratorPolicy"]["parallelismLimit"] == 16
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--shards"
    inner = ir["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["scan-shard"]
    merge = root["merge-scans"]
    assert "scan-loop" in merge["dependentTasks"]
    assert "artifacts" not in merge["inputs"] or set(merge["inputs"]["artifacts"]) == {"plan"}
    assert merge["inputs"]["parameters"]["run_id"]["runtimeValue"] == {
        "constant": "{{$.pipeline_job_uuid}}"}
    assert set(root) >= {"plan-shards", "merge-scans", "validate-data",
                         "detect-drift-sharded", "monitor"}
    # The shard scans read the source files: never served from KFP's cache.
    assert inner["scan-shard"]["cachingOptions"] == {}


def test_the_pods_shape_merges_what_the_pool_merges(tmp_path):
    """Both shapes run by kfp.local: the pods' partials go through the store's fan-in."""
    from kfp import dsl, local

    from kfp_mlops.pipelines.sharded_monitoring import add_sharded_scan, scan_loop_pipeline

    for i in range(3):
        folder = tmp_path / "batch" / f"day=2026-11-0{i + 1}"
        folder.mkdir(parents=True)
        make_batch("reference", 500, i).to_parquet(folder / "part-0.parquet")
    store = str(tmp_path / "store")
    loop = scan_loop_pipeline(parallelism=2)
    statistics = {}
    for shape in ("pool", "pods"):

        @dsl.pipeline(name=f"scan-{shape}")
        def scan():
            add_sharded_scan(data=str(tmp_path / "batch"), shard_rows=400,
                             shards_as=shape, store=store, scan_loop=loop)  # noqa: B023

        root = tmp_path / shape
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
                   raise_on_error=True)
        scan()
        task = "scan-shards" if shape == "pool" else "merge-scans"
        statistics[shape] = json.loads(next(root.rglob(f"{task}/statistics")).read_text())
    assert statistics["pods"] == statistics["pool"]
    assert statistics["pods"]["rows"] == 1500
    # merge-scans deleted the partials it read.
    assert not [p for p in (tmp_path / "store" / "fan-in").rglob("*") if p.is_file()]


def test_data_profile_records_a_sharded_version_kept_in_place(tmp_path, capsys):
    from kfp_mlops.data.versions import download_dataset, get_dataset_version
    from kfp_mlops.errors import DataError
    from kfp_mlops.storage import open_store

    for day in ("2026-11-01", "2026-11-02"):
        folder = tmp_path / "events" / f"day={day}"
        folder.mkdir(parents=True)
        make_batch("reference", 900, len(day)).to_parquet(folder / "part-0.parquet")
    store = str(tmp_path / "store")
    argv = ["data", "profile", str(tmp_path / "events"), "--shard-rows", "500",
            "--store", store, "--report", str(tmp_path / "report.html")]
    code, first, _ = cli_json(capsys, *argv)
    assert code == 0 and first["new"] is True and first["shards"] == 2
    assert first["statistics"]["rows"] == 1800
    assert "<svg" in (tmp_path / "report.html").read_text()
    # The same files in other shards: the same version, already recorded.
    code, again, _ = cli_json(capsys, *argv[:4], "5000", *argv[5:])
    assert again["shards"] == 1 and again["version"] == first["version"] and not again["new"]

    version = get_dataset_version(open_store(store), first["version"])
    assert [s["rows"] for s in version.shards] == [900, 900]
    assert all(len(s["content_sha256"]) == 64 for s in version.shards)
    with pytest.raises(DataError, match="kept in place"):
        download_dataset(open_store(store), version.version_id, tmp_path / "copy.parquet")
    code = main(["data", "show", version.version_id, "--store", store])
    assert code == 0 and "shards:   2, kept in place" in capsys.readouterr().out


def test_monitor_shards_a_prefix_and_a_parquet_file_over_the_threshold(tmp_path):
    from kfp_mlops.app.commands.loop import sharded

    make_batch("reference", 3000, 1).to_parquet(tmp_path / "big.parquet")
    make_batch("reference", 10, 1).to_csv(tmp_path / "small.csv")
    assert sharded(str(tmp_path), None)  # a folder is many files
    assert sharded(str(tmp_path / "*.parquet"), None)
    assert sharded("s3://lake/events/", None)
    assert sharded(str(tmp_path / "big.parquet"), 1000)
    assert not sharded(str(tmp_path / "big.parquet"), 5000)
    assert not sharded(str(tmp_path / "big.parquet"), None)
    assert not sharded(str(tmp_path / "small.csv"), 1)
    assert not sharded("penguins", None)
