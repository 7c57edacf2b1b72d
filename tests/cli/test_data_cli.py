"""`kfp-mlops data ...`: versions, schemas (hand-edited ones too) and drift."""

import json

import yaml

from kfp_mlops.app.cli import main
from kfp_mlops.data.generator import make_batch
from kfp_mlops.data.ingest import ingest_to_parquet


def cli_json(capsys, *argv):
    code = main([*argv, "--output", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_versions_are_content_addressed_and_listed(tmp_path, capsys):
    store = str(tmp_path / "store")
    first = ingest_to_parquet("wine", tmp_path / "a.parquet", store)
    again = ingest_to_parquet("wine", tmp_path / "b.parquet", store)
    assert first.dataset_version == again.dataset_version and first.new_version
    assert not again.new_version
    code, versions = cli_json(capsys, "data", "list", "--store", store)
    assert code == 0 and [v["version_id"] for v in versions] == [first.dataset_version]
    code, shown = cli_json(capsys, "data", "show", first.dataset_version, "--store", store)
    assert shown["rows"] == 178 and "alcohol" in shown["columns"]
    code, error = cli_json(capsys, "data", "show", "feedbeef", "--store", store)
    assert code == 1 and "kfp-mlops data list" in error["error"]


def test_edited_schema_becomes_the_next_version(tmp_path, capsys):
    from kfp_mlops.data.gate import validate_against_store
    from kfp_mlops.data.stats import compute_statistics_from_frame

    store = str(tmp_path / "store")
    frame = make_batch("reference", 500, 1)
    first = validate_against_store(compute_statistics_from_frame(frame), store, "loans")
    assert first.passed and first.schema_created
    code, shown = cli_json(capsys, "data", "schema", "loans", "--store", store)
    schema = yaml.safe_load(shown["yaml"])
    schema["columns"]["region"]["domain"] = ["north"]  # pretend only one region is allowed
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(schema))
    code, stored = cli_json(capsys, "data", "schema", "loans", "--set",
                            str(tmp_path / "schema.yaml"), "--store", store)
    assert code == 0 and stored["version"] == 2
    second = validate_against_store(compute_statistics_from_frame(frame), store, "loans")
    assert not second.passed and "region" in second.reason


def test_drift_between_versions_and_files_with_report(tmp_path, capsys):
    make_batch("reference", 1500, 1).to_csv(tmp_path / "ref.csv", index=False)
    make_batch("drifted", 1500, 2).to_csv(tmp_path / "cur.csv", index=False)
    code, result = cli_json(capsys, "data", "drift", "--reference", str(tmp_path / "ref.csv"),
                            "--current", str(tmp_path / "cur.csv"), "--report",
                            str(tmp_path / "drift.html"), "--store", str(tmp_path / "s"))
    assert code == 0 and result["dataset_drift"] is True
    html = (tmp_path / "drift.html").read_text()
    assert "<svg class='plot'" in html and "<script" not in html
    code, error = cli_json(capsys, "data", "drift", "--reference", str(tmp_path / "ref.csv"),
                           "--current", "iris", "--store", str(tmp_path / "s"))
    assert code == 1 and "share no feature columns" in error["error"]


def test_console_script_ends_drift_without_teardown_and_loses_no_output(tmp_path):
    """The installed script, stdout and stderr to pipes, as a shell or CI reads them.

    ``data drift`` ends with ``os._exit`` after flushing (``cli.console_main``): what it
    printed must still arrive whole, and a failing drift must still end the usual way.
    """
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("kfp-mlops")
    make_batch("reference", 1500, 1).to_csv(tmp_path / "ref.csv", index=False)
    make_batch("drifted", 1500, 2).to_csv(tmp_path / "cur.csv", index=False)
    common = ["--reference", str(tmp_path / "ref.csv"), "--store", str(tmp_path / "s")]
    marker = "atexit handlers ran"
    # An atexit handler of the interpreter's own runs only on a full teardown.
    probe = (f"import atexit, sys; atexit.register(print, {marker!r}, file=sys.stderr); "
             "sys.argv[0] = 'kfp-mlops'; from kfp_mlops.app.cli import console_main; "
             "console_main()")

    def run(*argv):
        return subprocess.run([sys.executable, "-c", probe, "data", "drift", *common, *argv],
                              capture_output=True, text=True, timeout=120)

    done = run("--current", str(tmp_path / "cur.csv"), "--output", "json",
               "--report", str(tmp_path / "drift.html"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dataset_drift"] is True  # the whole JSON, flushed
    assert marker not in done.stderr and (tmp_path / "drift.html").stat().st_size > 0
    failed = run("--current", "iris")
    assert failed.returncode == 1 and "share no feature columns" in failed.stderr
    assert marker in failed.stderr  # an error ends through the interpreter's exit
    text = subprocess.run([str(script), "data", "drift", *common, "--current",
                           str(tmp_path / "cur.csv")], capture_output=True, text=True,
                          timeout=120)
    assert text.returncode == 0 and "DRIFT" in text.stdout.splitlines()[1]
