import pytest

from kfp_mlops.data.schema import (
    Schema,
    SchemaError,
    infer_or_load_schema,
    infer_schema,
    load_schema,
    save_schema,
)
from kfp_mlops.data.stats import compute_statistics_from_frame
from kfp_mlops.storage import StoreError


def test_inferred_schema(mixed):
    schema = infer_schema(compute_statistics_from_frame(mixed))
    assert schema.columns["age"].type == "numeric"
    assert schema.columns["visits"].type == "integer"
    assert schema.columns["city"].domain == ["lyon", "nice", "paris"]
    assert schema.columns["member"].type == "boolean"
    assert schema.columns["income"].nullable and not schema.columns["age"].nullable
    assert schema.columns["age"].min == mixed["age"].min()


def test_yaml_round_trip_and_readable(mixed):
    schema = infer_schema(compute_statistics_from_frame(mixed))
    text = schema.to_yaml()
    assert "city:" in text and "domain:" in text and text.startswith("#")
    assert Schema.from_yaml(text).columns == schema.columns


def test_domain_cap_means_free_text():
    import pandas as pd

    frame = pd.DataFrame({"name": [f"n{i}" for i in range(300)]})
    assert infer_schema(compute_statistics_from_frame(frame)).columns["name"].domain is None


def test_versions_and_user_edit(store, mixed):
    stats = compute_statistics_from_frame(mixed)
    schema, created = infer_or_load_schema(store, "demo", stats)
    assert created and schema.version == 1
    edited = Schema.from_yaml(schema.to_yaml().replace("- nice", "- nice\n    - nantes"))
    assert save_schema(store, edited, "demo") == 2
    loaded, created = infer_or_load_schema(store, "demo", stats)
    assert not created and loaded.version == 2 and "nantes" in loaded.columns["city"].domain
    assert "nantes" not in load_schema(store, "demo", version=1).columns["city"].domain
    # Re-inference only on request, and it is a new version.
    fresh, created = infer_or_load_schema(store, "demo", stats, update=True)
    assert created and fresh.version == 3 and "nantes" not in fresh.columns["city"].domain


def test_missing_schema_and_version(store):
    with pytest.raises(StoreError, match="--update-schema"):
        load_schema(store, "none")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("columns:\n  a: {type: float}\n", "unknown; use one of"),
        ("columns:\n  a: {nullable: true}\n", "'a' in the schema needs a 'type:'"),
        ("columns:\n  a: {type: numeric, maximum: 3}\n", "unknown schema fields"),
        ("nothing: here\n", "top-level 'columns:'"),
    ],
)
def test_bad_yaml_names_the_field(text, match):
    with pytest.raises(SchemaError, match=match):
        Schema.from_yaml(text)
