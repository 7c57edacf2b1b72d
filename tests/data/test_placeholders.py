"""Numbers with placeholders: read as numbers at ingest, with the placeholders missing."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kfp_mlops.data.ingest import ingest_to_parquet
from kfp_mlops.data.placeholders import MAX_SHARE
from kfp_mlops.data.sources import bundled_table


def _with_placeholders(path, share: float, token: str = "?"):
    frame = bundled_table("breast_cancer")
    rng = np.random.default_rng(0)
    radius = frame["mean radius"].astype(object)
    hit = rng.random(len(frame)) < share
    radius[hit] = token
    frame["mean radius"] = radius
    texture = frame["mean texture"].astype(object)
    texture[:3] = "-"
    frame["mean texture"] = texture
    frame["grade"] = np.where(rng.random(len(frame)) < 0.5, "low", "high")
    frame.to_csv(path, index=False)
    return int(hit.sum())


def test_a_few_placeholders_make_missing_numbers(tmp_path, caplog):
    source = tmp_path / "cancer.csv"
    marked = _with_placeholders(source, 0.05)
    result = ingest_to_parquet(str(source), tmp_path / "out.parquet")
    assert result.placeholders == {"mean radius": {"?": marked}, "mean texture": {"-": 3}}
    table = pq.read_table(tmp_path / "out.parquet")
    assert str(table.schema.field("mean radius").type) == "double"
    assert table.column("mean radius").null_count == marked
    assert str(table.schema.field("grade").type) == "string"  # text stays text
    assert f"{marked} '?'" in caplog.text
    # The file hash and content hash are of the converted rows: ingesting again agrees.
    again = ingest_to_parquet(str(source), tmp_path / "again.parquet")
    assert again.sha256 == result.sha256


def test_past_the_share_a_column_is_text(tmp_path):
    source = tmp_path / "cancer.csv"
    _with_placeholders(source, MAX_SHARE * 2.5)
    result = ingest_to_parquet(str(source), tmp_path / "out.parquet")
    assert "mean radius" not in result.placeholders
    assert str(pq.read_schema(tmp_path / "out.parquet").field("mean radius").type) == "string"


def test_placeholders_late_in_a_big_file(tmp_path):
    """The first block infers float; a '?' further on widens the column, then converts it."""
    rows = 200_000
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float), "y": np.arange(rows) % 3})
    x = frame["x"].astype(object)
    x[rows - 5:] = "?"
    frame["x"] = x
    frame.to_csv(tmp_path / "big.csv", index=False)
    result = ingest_to_parquet(str(tmp_path / "big.csv"), tmp_path / "out.parquet")
    assert result.placeholders == {"x": {"?": 5}}
    assert pq.read_table(tmp_path / "out.parquet").column("x").null_count == 5


@pytest.mark.parametrize("values", [["1", "2", "a", "b", "c", "d", "e", "f"] * 50])
def test_many_distinct_words_are_text(tmp_path, values):
    pd.DataFrame({"v": values, "y": range(len(values))}).to_csv(tmp_path / "t.csv", index=False)
    result = ingest_to_parquet(str(tmp_path / "t.csv"), tmp_path / "out.parquet")
    assert result.placeholders == {}
