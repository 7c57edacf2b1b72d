"""Batch scoring of Parquet and CSV equals model.predict, across row groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlops.model.package import load_model_folder
from kfp_mlops.serving.batch import BatchInputError, score_parquet
from tests.serving.serving_models import penguins


@pytest.fixture(scope="module")
def many_penguins() -> pd.DataFrame:
    x, _ = penguins()
    frame = pd.concat([x] * 8, ignore_index=True)
    return frame.assign(row_id=np.arange(len(frame)))


@pytest.fixture
def parquet_in(tmp_path, many_penguins) -> Path:
    path = tmp_path / "in.parquet"
    pq.write_table(
        pa.Table.from_pandas(many_penguins, preserve_index=False), path, row_group_size=300
    )
    return path


def test_parquet_scores_equal_model_predict(classifier_dir, parquet_in, many_penguins, tmp_path):
    model, _ = load_model_folder(classifier_dir)
    assert pq.ParquetFile(parquet_in).num_row_groups > 5
    out = tmp_path / "scores" / "out.parquet"
    result = score_parquet(
        classifier_dir,
        parquet_in,
        out,
        batch_rows=512,
        with_probabilities=True,
        keep_columns=["row_id"],
    )
    assert result.rows == len(many_penguins) and result.batches == -(-len(many_penguins) // 512)
    scored = pq.read_table(out).to_pandas()
    assert scored.columns.tolist() == [
        "row_id",
        "prediction",
        "proba_Adelie",
        "proba_Chinstrap",
        "proba_Gentoo",
    ]
    assert scored["row_id"].tolist() == many_penguins["row_id"].tolist()
    features = many_penguins.drop(columns=["row_id"])
    assert scored["prediction"].tolist() == model.predict(features).tolist()
    np.testing.assert_allclose(scored.iloc[:, 2:].to_numpy(), model.predict_proba(features))
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_csv_input_streams_too(classifier_dir, many_penguins, tmp_path):
    model, _ = load_model_folder(classifier_dir)
    path = tmp_path / "in.csv"
    many_penguins.to_csv(path, index=False)
    # row_id is neither a feature, the target nor a dropped column: refused by name,
    # as serving refuses it, unless asked to ignore unknown columns.
    with pytest.raises(BatchInputError, match=r"unknown columns \['row_id'\]"):
        score_parquet(classifier_dir, path, tmp_path / "out.parquet", batch_rows=256)
    assert not (tmp_path / "out.parquet").exists()
    result = score_parquet(classifier_dir, path, tmp_path / "out.parquet", batch_rows=256,
                           ignore_unknown_columns=True)
    scored = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert result.rows == len(many_penguins)
    assert scored["prediction"].tolist() == model.predict(many_penguins).tolist()


def test_regression_predictions(regressor_dir, tmp_path):
    from tests.serving.serving_models import diabetes

    model, _ = load_model_folder(regressor_dir)
    x, _ = diabetes()
    pq.write_table(pa.Table.from_pandas(x), tmp_path / "d.parquet", row_group_size=100)
    score_parquet(regressor_dir, tmp_path / "d.parquet", tmp_path / "o.parquet", batch_rows=64)
    got = pq.read_table(tmp_path / "o.parquet")["prediction"].to_numpy()
    np.testing.assert_allclose(got, model.predict(x))


def test_missing_column_is_refused_before_scoring(classifier_dir, many_penguins, tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(many_penguins.drop(columns=["island"])), path)
    out = tmp_path / "out.parquet"
    with pytest.raises(BatchInputError, match="island"):
        score_parquet(classifier_dir, path, out)
    assert list(tmp_path.iterdir()) == [path]


def test_wrong_column_type_is_refused(classifier_dir, many_penguins, tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(
        pa.Table.from_pandas(many_penguins.assign(year=lambda d: d.year.astype(str))), path
    )
    with pytest.raises(BatchInputError, match="'year'"):
        score_parquet(classifier_dir, path, tmp_path / "out.parquet")


def test_null_in_non_nullable_column_leaves_no_output(classifier_dir, many_penguins, tmp_path):
    frame = many_penguins.astype({"year": "float64"})
    frame.loc[2000, "year"] = np.nan
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=300)
    with pytest.raises(BatchInputError, match="'year'.*row 2000"):
        score_parquet(classifier_dir, path, tmp_path / "out.parquet", batch_rows=500,
                      ignore_unknown_columns=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_probabilities_need_a_classifier(regressor_dir, tmp_path):
    from tests.serving.serving_models import diabetes

    pq.write_table(pa.Table.from_pandas(diabetes()[0]), tmp_path / "d.parquet")
    with pytest.raises(BatchInputError, match="classifier"):
        score_parquet(
            regressor_dir, tmp_path / "d.parquet", tmp_path / "o.parquet", with_probabilities=True
        )
