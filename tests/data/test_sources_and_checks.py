import math

import numpy as np
import pandas as pd
import pytest

from kfp_mlops.data.checks import check_training_data, infer_task
from kfp_mlops.data.sources import BUNDLED, DataError, load_table
from kfp_mlops.data.split import split_frame, split_positions


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
        # (pyarrow reads an unterminated quote at the very end as a value ending there)
        (b"a,b\n1,2\n3,4,5\n", "cannot parse.*Expected 2 columns, got 3"),
        (b"a,b\n1,\xff\xfe\n", "not valid UTF-8"),
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
    assert not test_a.equals(split_frame(frame, "target", "classification", 0.25, seed=2)[1])
    shares = frame["target"].value_counts(normalize=True)
    assert (test_a["target"].value_counts(normalize=True) - shares).abs().max() < 0.05


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_positions_hold_out_each_class_share(seed):
    # 3 classes of 500, 300 and 7 rows, interleaved; 20% of 807 rows is 161.4 -> 162.
    codes = np.array([0] * 500 + [1] * 300 + [2] * 7)[np.random.default_rng(0).permutation(807)]
    train, test = split_positions(codes, 0.2, seed)
    assert len(test) == 162 and len(train) == 645
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(807))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)  # file order kept
    held = np.bincount(codes[test], minlength=3)
    assert np.all(np.abs(held - np.array([500, 300, 7]) * 162 / 807) < 1), held


def test_split_positions_unstratified_when_a_class_cannot_be_in_both():
    codes = np.array([0] * 50 + [1])  # class 1 has one row
    train, test = split_positions(codes, 0.2, 3)
    assert (len(train), len(test)) == (40, 11)
    with pytest.raises(DataError, match="between 0 and 1"):
        split_positions(codes, 1.5)
    with pytest.raises(DataError, match="empty split"):
        split_positions(codes[:1], 0.2)


@pytest.mark.parametrize(("target", "task"), [("species", "classification"),
                                              ("body_mass_g", "regression")])
def test_split_file_gives_the_rows_split_frame_gives(tmp_path, target, task):
    from kfp_mlops.data.sources import read_parquet
    from kfp_mlops.data.split import split_file

    frame = load_table("penguins")  # body_mass_g has missing values: those rows drop out
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    rows = split_file(tmp_path / "data.parquet", tmp_path / "train", tmp_path / "test",
                      target, task, 0.2, seed=7)
    labelled = frame[frame[target].notna()]
    assert rows == (len(labelled) - math.ceil(0.2 * len(labelled)), math.ceil(0.2 * len(labelled)))
    for name, expected in zip(("train", "test"), split_frame(frame, target, task, 0.2, seed=7),
                              strict=True):
        # Through Parquet too, so missing text reads back as None on both sides.
        expected.to_parquet(tmp_path / f"expected-{name}")
        pd.testing.assert_frame_equal(read_parquet(tmp_path / name),
                                      read_parquet(tmp_path / f"expected-{name}"))


# ---------------------------------------------------------------- data edge cases (issue 12)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("a,b,,y", r"column 3 \(after 'b', before 'y'\) of 4"),
        (",a,b,y", r"column 1 \(before 'a'\) of 4.*index=False"),
        ("a,b,y,", r"column 4 \(after 'y'\) of 4"),
        ("a, ,b,y", "column 2"),
    ],
)
def test_a_csv_column_without_a_name_is_refused_by_position(tmp_path, header, message):
    # pandas would read it as a feature called "Unnamed: 2".
    rows = "\n".join(",".join(str(i + j) for j in range(4)) for i in range(5))
    path = tmp_path / "data.csv"
    path.write_text(f"{header}\n{rows}\n")
    with pytest.raises(DataError, match=message):
        load_table(str(path))


def test_a_parquet_column_without_a_name_is_refused(tmp_path):
    pd.DataFrame({"a": [1, 2], "": [3, 4], "y": [0, 1]}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"column 2 \(after 'a', before 'y'\) of 3"):
        load_table(str(tmp_path / "d.parquet"))


def test_nested_parquet_columns_are_refused_at_ingest_by_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kfp_mlops.data.ingest import ingest_to_parquet

    pq.write_table(pa.table({
        "x": [1.0, 2.0, 3.0], "tags": [[1, 2], [3], None],
        "place": [{"lat": 1.0, "lon": 2.0}] * 3, "y": ["a", "b", "a"],
    }), tmp_path / "nested.parquet")
    # Before: TypeError "unhashable type: 'numpy.ndarray'" while hashing the content.
    with pytest.raises(DataError, match=r"nested column\(s\) 'tags' \(list\), 'place' "
                                        r"\(struct/map\).*Flatten them upstream"):
        ingest_to_parquet(str(tmp_path / "nested.parquet"), tmp_path / "out.parquet",
                          str(tmp_path / "store"))
    assert not (tmp_path / "store").exists()  # nothing was published


def test_column_types_the_statistics_cannot_read_are_refused_at_ingest(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kfp_mlops.data.ingest import ingest_to_parquet

    pq.write_table(pa.table({"x": [1.0, 2.0], "blob": [b"\x00", b"\x01"], "y": [0, 1]}),
                   tmp_path / "binary.parquet")
    with pytest.raises(DataError, match=r"'blob' \(binary\).*convert each"):
        ingest_to_parquet(str(tmp_path / "binary.parquet"), tmp_path / "out.parquet")


def _with_target(values):
    return pd.DataFrame({"x": np.arange(len(values), dtype=float), "y": values})


def test_a_continuous_target_is_refused_for_classification_before_training():
    values = np.random.default_rng(0).normal(size=2000)
    with pytest.raises(DataError, match=r"'y' holds continuous numbers \(2000 distinct values "
                                        r"in 2000 rows.*--task regression"):
        check_training_data(_with_target(values), "y", task="classification")
    # Inferred, the same target is a regression: nothing to refuse.
    assert check_training_data(_with_target(values), "y").task == "regression"


def test_too_many_classes_for_the_rows_are_refused():
    whole = np.arange(2000) % 400  # 400 integer classes, 5 rows each
    with pytest.raises(DataError, match=r"400 classes in 2000 labelled rows.*fewer than 10 "
                                        r"rows per class.*--task regression"):
        check_training_data(_with_target(whole), "y", task="classification")
    ids = [f"customer-{i}" for i in range(500)]  # an identifier picked as the target
    with pytest.raises(DataError, match=r"500 classes in 500.*not an identifier"):
        check_training_data(_with_target(ids), "y")


def test_many_classes_with_enough_rows_each_still_train():
    labels = np.arange(3000) % 30  # 30 classes, 100 rows each
    checked = check_training_data(_with_target(labels), "y", task="classification")
    assert checked.task == "classification" and len(checked.classes) == 30
    fractional = np.arange(300) % 3 / 2  # 0.0, 0.5, 1.0: few values, fine as classes
    assert len(check_training_data(_with_target(fractional), "y",
                                   task="classification").classes) == 3


@pytest.mark.parametrize("task", ["classification", "regression", None])
def test_an_infinite_target_is_refused(task):
    values = np.arange(100, dtype=float) % 2
    values[[3, 50]] = [np.inf, -np.inf]
    with pytest.raises(DataError, match="'y' holds 2 infinite values"):
        check_training_data(_with_target(values), "y", task=task)
