"""Schema semantics (issue 13): inferred ranges advise, curated ranges block.

On the cars data (tests/data/cars.py): a batch whose numbers moved far past the
inferred ranges, with new names in the free-text column, passes the data gate with
warnings and widens the inferred ranges in a new schema version that names the run;
structural anomalies (a type change, a missing column) still block, with the fix.
"""

import json

import pytest
import yaml

from kfp_mlops.app.cli import main
from kfp_mlops.data.gate import validate_against_store
from kfp_mlops.data.report import markdown_summary
from kfp_mlops.data.schema import (
    OPEN_DOMAIN_DISTINCT_SHARE,
    Schema,
    SchemaError,
    infer_schema,
    load_schema,
    save_schema,
)
from kfp_mlops.data.stats import compute_statistics_from_frame
from kfp_mlops.model.features import IDENTIFIER_DISTINCT_SHARE, plan_features
from kfp_mlops.storage import LocalStore
from tests.data.cars import SHIFT, TARGET, cars_batches


@pytest.fixture(scope="module")
def batches():
    return cars_batches()


def stats_of(frame):
    return compute_statistics_from_frame(frame)


def test_inferred_schema_marks_ranges_and_leaves_free_text_open(batches):
    schema = infer_schema(stats_of(batches["b1"]))
    assert all(schema.columns[c].range_kind == "inferred" for c in SHIFT)
    assert schema.columns["Name"].domain is None  # 153 names in 180 rows: free text
    assert schema.columns["Origin"].domain == ["Europe", "Japan", "USA"]
    text = schema.to_yaml()
    assert "range: inferred" in text and "curated = blocking" in text
    assert Schema.from_yaml(text).columns["Horsepower"].range_kind == "inferred"


def test_every_column_training_drops_as_text_gets_an_open_domain(batches):
    # The schema opens a domain at a lower distinct share than training drops a column.
    assert OPEN_DOMAIN_DISTINCT_SHARE <= IDENTIFIER_DISTINCT_SHARE
    rows = batches["b3"].iloc[:90]  # a training split's size: Name is dropped there
    plan = plan_features(rows, TARGET)
    assert "identifier-like" in plan.dropped["Name"]
    assert infer_schema(stats_of(rows)).columns["Name"].domain is None


def test_unmarked_range_is_curated_and_a_bad_mark_is_named():
    schema = Schema.from_yaml("columns:\n  x: {type: numeric, min: 0, max: 1}\n")
    assert schema.columns["x"].range_kind is None and schema.columns["x"].range_blocks
    with pytest.raises(SchemaError, match="column 'x'.*range 'advisory' is unknown.*curated"):
        Schema.from_yaml("columns:\n  x: {type: numeric, min: 0, max: 1, range: advisory}\n")


def test_shifted_batch_passes_with_warnings_and_widens_the_inferred_ranges(batches, tmp_path):
    store = str(tmp_path / "store")
    first = validate_against_store(stats_of(batches["b1"]), store, "cars")
    assert first.passed and first.schema_created and first.schema_version == 1
    shifted = stats_of(batches["b3"])
    result = validate_against_store(
        shifted, store, "cars", run_id="run-42", summary_path=tmp_path / "summary.md",
        report_path=tmp_path / "report.html",
    )
    assert result.passed, result.reason
    warned = {a.column for a in result.validation.warnings if a.kind == "out_of_range"}
    assert set(SHIFT) <= warned and not result.validation.errors
    assert set(result.widened) == set(SHIFT) and result.schema_version == 2
    assert "widened: schema 'cars' v1 -> v2" in result.reason
    # The summary (and the report) show the advisory anomalies as warnings.
    summary = (tmp_path / "summary.md").read_text()
    assert "`warning` column 'Weight_in_lbs' has maximum 8738, above the schema's inferred " \
        "max 4906" in summary
    report = (tmp_path / "report.html").read_text()
    assert "above the schema&#x27;s inferred max 4906" in report and ">warning<" in report
    stored = load_schema(LocalStore(tmp_path / "store"), "cars")
    assert stored.version == 2 and stored.notes["widened"]["run"] == "run-42"
    assert stored.notes["widened"]["from_version"] == 1
    for column in SHIFT:
        assert stored.columns[column].min <= shifted.columns[column].min
        assert stored.columns[column].max >= shifted.columns[column].max
        assert stored.columns[column].range_kind == "inferred"
    assert stored.columns["Origin"].domain == ["Europe", "Japan", "USA"]
    # The widened schema accepts the batch without a warning: no version 3.
    again = validate_against_store(shifted, store, "cars", run_id="run-43")
    assert again.passed and not again.widened and again.schema_version == 2


def test_curated_range_blocks_and_is_never_widened(batches, tmp_path):
    store = LocalStore(tmp_path / "store")
    schema = infer_schema(stats_of(batches["b1"]))
    schema.columns["Weight_in_lbs"].range_kind = "curated"
    save_schema(store, schema, "cars")
    result = validate_against_store(stats_of(batches["b3"]), str(tmp_path / "store"), "cars")
    assert not result.passed
    assert [a.column for a in result.validation.errors] == ["Weight_in_lbs"]
    assert "1 blocking anomaly" in result.reason and "curated max 4906" in result.reason
    assert "(fix: fix the source, or widen the curated range" in result.reason
    assert load_schema(store, "cars").version == 1
    # Re-inferring (--update-schema) replaces what the data showed, not the curated range.
    update = validate_against_store(stats_of(batches["b1"]), str(tmp_path / "store"), "cars",
                                    update_schema=True)
    kept = load_schema(store, "cars").columns["Weight_in_lbs"]
    assert update.passed and (kept.max, kept.range_kind) == (4906.0, "curated")


@pytest.mark.parametrize("break_it, column, kind", [
    (lambda f: f.assign(Horsepower=f["Horsepower"].astype(str)), "Horsepower", "type_change"),
    (lambda f: f.drop(columns=["Origin"]), "Origin", "missing_column"),
    (lambda f: f.assign(Origin=None), "Origin", "all_null"),
])
def test_structural_anomalies_still_block_with_the_fix(batches, tmp_path, break_it, column, kind):
    store = str(tmp_path / "store")
    validate_against_store(stats_of(batches["b1"]), store, "cars")
    result = validate_against_store(stats_of(break_it(batches["b3"])), store, "cars",
                                    run_id="run-7")
    assert not result.passed and (column, kind) in {
        (a.column, a.kind) for a in result.validation.errors}
    assert "blocking anomal" in result.reason and "(fix: " in result.reason
    assert not result.widened and load_schema(LocalStore(tmp_path / "store"), "cars").version == 1


def test_warn_only_never_widens(batches, tmp_path):
    store = str(tmp_path / "store")
    validate_against_store(stats_of(batches["b1"]), store, "cars")
    result = validate_against_store(stats_of(batches["b3"]), store, "cars", warn_only=True)
    assert result.passed and not result.widened and result.schema_version == 1


def test_schema_set_keeps_the_marks(batches, tmp_path, capsys):
    store = str(tmp_path / "store")
    validate_against_store(stats_of(batches["b1"]), store, "cars")
    assert main(["data", "schema", "cars", "--store", store, "--output", "json"]) == 0
    edited = yaml.safe_load(json.loads(capsys.readouterr().out)["yaml"])
    edited["columns"]["Weight_in_lbs"].update(max=20000, range="curated")
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    assert main(["data", "schema", "cars", "--set", str(tmp_path / "schema.yaml"),
                 "--store", store, "--output", "json"]) == 0
    capsys.readouterr()
    assert main(["data", "schema", "cars", "--store", store, "--output", "json"]) == 0
    shown = yaml.safe_load(json.loads(capsys.readouterr().out)["yaml"])
    assert shown["version"] == 2
    assert shown["columns"]["Weight_in_lbs"]["range"] == "curated"
    assert shown["columns"]["Horsepower"]["range"] == "inferred"
    # The gate widens the inferred ranges of version 2 and keeps the curated one.
    result = validate_against_store(stats_of(batches["b3"]), store, "cars", run_id="r")
    assert result.passed and "Weight_in_lbs" not in result.widened
    latest = load_schema(LocalStore(tmp_path / "store"), "cars").columns["Weight_in_lbs"]
    assert (latest.max, latest.range_kind) == (20000, "curated")


def test_markdown_summary_lists_the_advisory_warning(batches):
    schema = infer_schema(stats_of(batches["b1"]))
    from kfp_mlops.data.validation import validate

    result = validate(stats_of(batches["b3"]), schema)
    text = markdown_summary(stats_of(batches["b3"]), validation=result)
    assert result.passed and "Validation **PASS**" in text
    assert "`warning` column 'Horsepower' has maximum 408.5, above the schema's inferred " \
        "max 230" in text
