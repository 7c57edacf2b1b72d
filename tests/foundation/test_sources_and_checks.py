import numpy as np
import pandas as pd
import pytest

from kfp_mlops.data.checks import check_training_data, infer_task
from kfp_mlops.data.sources import BUNDLED, DataError, load_table
from kfp_mlops.data.split import split_frame


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_every_bundled_dataset_loads_with_its_target(name):
    frame = load_table(name)
    assert BUNDLED[name].target in frame.columns
    assert len(frame) > 100


def test_penguins_has_missing_values_and_categoricals():
    frame = load_table("penguins")
    assert frame.isna().any().any()
    assert frame["island"].dtype == object


def test_csv_and_parquet_round_trip(tmp_path):
    frame = load_table("iris")
    frame.to_csv(tmp_path / "iris.csv", index=False)
    frame.to_parquet(tmp_path / "iris.parquet", index=False)
    assert load_table(str(tmp_path / "iris.csv")).shape == frame.shape
    pd.testing.assert_frame_equal(load_table(str(tmp_path / "iris.parquet")), frame)


def test_s3_csv_source(s3, tmp_path):
    from kfp_mlops.storage import open_store

    load_table("wine").to_csv(tmp_path / "wine.csv", index=False)
    open_store(s3.uri()).upload_file("raw/wine.csv", tmp_path / "wine.csv")
    assert load_table(f"s3://{s3.bucket}/raw/wine.csv").shape == (178, 14)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b'a,b\n1,"unterminated\n', "cannot parse"),
        (b"a,b\n", "has no rows"),
        (b"a,b,a\n1,2,3\n", "more than once"),
    ],
)
def test_unreadable_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_table(str(path))


def test_missing_file_and_unknown_name():
    with pytest.raises(DataError, match="does not exist"):
        load_table("/nowhere/data.csv")
    with pytest.raises(DataError, match="bundled data sets are"):
        load_table("penguinz")


def test_task_inference():
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([0, 1, 2, 1])) == "classification"
    assert infer_task(pd.Series(np.linspace(0, 1, 50))) == "regression"
    assert infer_task(pd.Series(range(100))) == "regression"


def test_check_rejects_bad_targets():
    frame = load_table("iris")
    with pytest.raises(DataError, match="'species' is not in the data"):
        check_training_data(frame, "species")
    with pytest.raises(DataError, match="single class"):
        check_training_data(frame.assign(target="setosa"), "target")
    with pytest.raises(DataError, match="at least 20"):
        check_training_data(frame.head(10), "target")
    with pytest.raises(DataError, match="holds text"):
        check_training_data(frame, "target", task="regression")


def test_split_is_seeded_and_stratified():
    frame = load_table("wine")
    train_a, test_a = split_frame(frame, "target", "classification", 0.25, seed=1)
    train_b, test_b = split_frame(frame, "target", "classification", 0.25, seed=1)
    pd.testing.assert_frame_equal(test_a, test_b)
    shares = frame["target"].value_counts(normalize=True)
    assert (test_a["target"].value_counts(normalize=True) - shares).abs().max() < 0.05


@pytest.mark.parametrize(("target", "task"), [("species", "classification"),
                                              ("body_mass_g", "regression")])
def test_split_file_gives_the_rows_scikit_learn_gives(tmp_path, target, task):
    from sklearn.model_selection import train_test_split

    from kfp_mlops.data.sources import read_parquet
    from kfp_mlops.data.split import split_file

    frame = load_table("penguins")  # body_mass_g has missing values: those rows drop out
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    rows = split_file(tmp_path / "data.parquet", tmp_path / "train", tmp_path / "test",
                      target, task, 0.2, seed=7)
    # The reference: scikit-learn on the labelled frame, stratified on the class names.
    labelled = frame[frame[target].notna()]
    stratify = labelled[target].astype(str) if task == "classification" else None
    train, test = train_test_split(labelled, test_size=0.2, random_state=7, stratify=stratify)
    assert rows == (len(train), len(test))
    for name, expected in (("train", train), ("test", test)):
        # Through Parquet too, so missing text reads back as None on both sides.
        expected.reset_index(drop=True).to_parquet(tmp_path / f"expected-{name}")
        pd.testing.assert_frame_equal(read_parquet(tmp_path / name),
                                      read_parquet(tmp_path / f"expected-{name}"))
    from_frame = split_frame(frame, target, task, 0.2, seed=7)
    pd.testing.assert_frame_equal(from_frame[1], test.reset_index(drop=True))
