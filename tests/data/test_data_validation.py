import numpy as np
import pandas as pd
import pytest

from kfp_mlops.data.schema import infer_schema
from kfp_mlops.data.stats import compute_statistics_from_frame
from kfp_mlops.data.validation import ValidationThresholds, validate


@pytest.fixture
def schema(mixed):
    return infer_schema(compute_statistics_from_frame(mixed))


def check(frame, schema, **thresholds):
    stats = compute_statistics_from_frame(frame)
    return validate(stats, schema, ValidationThresholds(**thresholds))


def kinds(result):
    return {(a.column, a.kind, a.severity) for a in result.anomalies}


def test_fresh_batch_of_same_source_passes(schema, frame_factory):
    result = check(frame_factory(1500, seed=9), schema)
    assert result.passed, result.reason
    assert not result.errors


def test_real_data_against_itself(wine):
    stats = compute_statistics_from_frame(wine)
    result = validate(stats, infer_schema(stats))
    assert result.passed and result.anomalies == []


def test_type_change(schema, mixed):
    bad = mixed.assign(age=mixed["age"].round().astype(str))
    result = check(bad, schema)
    assert not result.passed
    assert ("age", "type_change", "error") in kinds(result)
    assert "'age' is categorical" in result.reason and "numeric in the schema" in result.reason


def test_integers_read_as_floats_are_not_a_type_change(schema, mixed):
    with_gap = mixed.assign(visits=mixed["visits"].astype(float))
    with_gap.loc[3, "visits"] = np.nan
    result = check(with_gap, schema)
    assert ("visits", "type_change", "error") not in kinds(result)


def curated(schema, *names):
    """``schema`` with the ranges of ``names`` marked curated, as a person would."""
    for name in names:
        schema.columns[name].range_kind = "curated"
    return schema


def test_out_of_range_past_a_curated_range_is_an_error(schema, mixed):
    bad = mixed.copy()
    bad.loc[5, "age"] = 1000.0  # a unit error
    result = check(bad, curated(schema, "age"))
    assert not result.passed and ("age", "out_of_range", "error") in kinds(result)
    anomaly = next(a for a in result.anomalies if a.kind == "out_of_range")
    assert "1000" in anomaly.message and "curated max" in anomaly.message
    assert "widen the curated range" in anomaly.fix
    edge = mixed.copy()
    edge.loc[5, "age"] = mixed["age"].max() + 0.01  # any distance blocks a curated bound
    assert ("age", "out_of_range", "error") in kinds(check(edge, schema))


def test_past_an_inferred_range_is_advisory(schema, mixed):
    edge = mixed.copy()
    edge.loc[5, "age"] = mixed["age"].max() + 0.01
    result = check(edge, schema)
    assert result.passed and ("age", "out_of_range", "warning") in kinds(result)
    assert "far" not in result.anomalies[0].message
    edge.loc[6, "age"] = -999.0  # a sentinel: still advisory, but called out
    result = check(edge, schema)
    assert result.passed and not result.errors
    low = next(a for a in result.anomalies if "minimum" in a.message)
    assert "inferred min" in low.message and "sentinel" in low.message
    assert "range: curated" in low.fix


def test_unseen_categories(schema, mixed):
    bad = mixed.copy()
    bad.loc[:99, "city"] = "marseille"  # 5 % of rows
    result = check(bad, schema)
    assert ("city", "unseen_categories", "error") in kinds(result)
    assert "'marseille'" in result.reason
    rare = mixed.copy()
    rare.loc[:4, "city"] = "marseille"  # 0.25 %: a warning, not a failure
    result = check(rare, schema)
    assert result.passed and ("city", "unseen_categories", "warning") in kinds(result)


def test_nulls_in_non_nullable_and_too_many_missing(schema, mixed):
    bad = mixed.copy()
    bad.loc[:10, "age"] = np.nan
    bad.loc[: len(bad) // 2, "income"] = np.nan
    found = kinds(check(bad, schema))
    assert ("age", "unexpected_nulls", "error") in found
    assert ("income", "missing_values", "error") in found


def test_all_null_column(schema, mixed):
    result = check(mixed.assign(income=np.nan), schema)
    assert ("income", "all_null", "error") in kinds(result)


def test_duplicates(schema, mixed):
    doubled = pd.concat([mixed, mixed.iloc[:300]], ignore_index=True)
    result = check(doubled, schema)
    assert (None, "duplicate_rows", "error") in kinds(result)
    assert "300 rows" in result.reason


def test_missing_and_extra_columns(schema, mixed):
    result = check(mixed.drop(columns=["city"]).assign(extra=1.0), schema)
    assert ("city", "missing_column", "error") in kinds(result)
    assert ("extra", "extra_column", "warning") in kinds(result)
    strict = check(mixed.assign(extra=1.0), schema, extra_columns_are_errors=True)
    assert not strict.passed


def test_too_few_rows(schema, mixed):
    result = check(mixed.iloc[:5], schema, min_rows=100)
    assert (None, "too_few_rows", "error") in kinds(result)


def test_warn_only_passes_but_reports(schema, mixed):
    bad = mixed.drop(columns=["age"])
    result = check(bad, schema, warn_only=True)
    assert result.passed
    assert [a.severity for a in result.anomalies] == ["warning"]
    assert result.to_dict()["anomalies"][0]["kind"] == "missing_column"


def test_all_null_column_is_an_anomaly_not_a_crash():
    import pandas as pd

    from kfp_mlops.data.schema import infer_schema
    from kfp_mlops.data.stats import compute_statistics_from_frame
    from kfp_mlops.data.validation import validate

    frame = pd.DataFrame({"a": range(50), "empty": [None] * 50})
    stats = compute_statistics_from_frame(frame)
    result = validate(stats, infer_schema(stats))
    assert not result.passed
    assert any(a.column == "empty" and a.kind == "all_null" for a in result.anomalies)


def test_a_failing_first_dataset_does_not_become_the_schema(tmp_path):
    import pandas as pd

    from kfp_mlops.data.gate import validate_against_store
    from kfp_mlops.data.stats import compute_statistics_from_frame

    good = pd.DataFrame({"a": range(100), "b": ["x", "y"] * 50})
    bad = pd.concat([good, good.head(40)])  # 29% duplicate rows
    first = validate_against_store(compute_statistics_from_frame(bad), str(tmp_path), "t")
    assert not first.passed and "repeat an earlier row" in first.reason
    assert not (tmp_path / "schemas").exists()
    second = validate_against_store(compute_statistics_from_frame(good), str(tmp_path), "t")
    assert second.passed and second.schema_created


def test_infinite_values_fail_the_gate_naming_column_count_and_fix(schema, mixed):
    # Before: they passed the gate and failed in scikit-learn without a column name.
    bad = mixed.copy()
    bad.loc[[1, 2, 3], "income"] = np.inf
    bad.loc[4, "age"] = -np.inf
    result = check(bad, schema)
    assert not result.passed
    assert {("income", "infinite_values", "error"), ("age", "infinite_values", "error")} <= kinds(
        result)
    income = next(a for a in result.errors if a.column == "income")
    assert "'income' has 3 infinite values" in income.message
    assert "division by zero" in income.fix
    # Infinite values are refused whatever the schema: a column it does not know too.
    extra = mixed.assign(ratio=np.where(np.arange(len(mixed)) == 0, np.inf, 1.0))
    assert ("ratio", "infinite_values", "error") in kinds(check(extra, schema))
    # The other figures stay finite, so the range checks do not fire on the infinities.
    assert not any(a.kind == "out_of_range" for a in result.anomalies)
