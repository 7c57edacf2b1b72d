import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from kfp_mlops.data.drift import DriftError, DriftThresholds, detect_drift, psi
from kfp_mlops.data.stats import StatisticsError


def test_no_drift_between_random_halves_of_real_data():
    frame = load_breast_cancer(as_frame=True).frame
    shuffled = frame.sample(frac=1.0, random_state=0)
    result = detect_drift(shuffled.iloc[:280], shuffled.iloc[280:])
    assert result.features[0].test == "ks"  # under 1000 rows a test decides
    assert not result.dataset_drift
    assert result.drift_share < 0.2, result.reason


def test_injected_drift_on_real_data_is_found():
    frame = load_breast_cancer(as_frame=True).frame
    ref, cur = frame.iloc[::2].copy(), frame.iloc[1::2].copy()
    shifted = ["mean radius", "mean texture", "worst area"]
    for name in shifted:
        cur[name] = cur[name] * 1.5
    result = detect_drift(ref, cur)
    assert set(shifted) <= set(result.drifted_features)


@pytest.mark.parametrize("rows", [600, 20_000])
def test_large_and_small_regimes(frame_factory, rows):
    ref, same, moved = frame_factory(rows, 0), frame_factory(rows, 1), frame_factory(rows, 2, 1.0)
    calm = detect_drift(ref, same)
    assert not calm.dataset_drift and calm.drifted_features == [], calm.reason
    drifted = detect_drift(ref, moved)
    assert drifted.dataset_drift
    assert {"age", "income", "city"} <= set(drifted.drifted_features)
    tests = {f.column: f.test for f in drifted.features}
    if rows > 1000:
        assert tests["age"] == "wasserstein_normed" and tests["city"] == "jensenshannon"
    else:
        assert tests["age"] == "ks" and tests["city"] == "chi2"
    assert "visits" not in drifted.drifted_features and "member" not in drifted.drifted_features


def test_parquet_paths_and_json(frame_factory, tmp_path):
    frame_factory(5000, 0).to_parquet(tmp_path / "ref.parquet", index=False)
    frame_factory(5000, 1, 1.0).to_parquet(tmp_path / "cur.parquet", index=False)
    result = detect_drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["dataset_drift"] is True and data["thresholds"]["drift_share"] == 0.5
    assert {f["column"] for f in data["features"]} == {"age", "income", "visits", "city", "member"}


def test_psi_method_and_share_threshold(frame_factory):
    ref, cur = frame_factory(3000, 0), frame_factory(3000, 1, 1.0)
    result = detect_drift(ref, cur, DriftThresholds(method="psi", drift_share=0.9))
    assert next(f for f in result.features if f.column == "age").test == "psi"
    assert 0.4 <= result.drift_share < 0.9 and not result.dataset_drift


def test_psi_values():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 50_000), rng.normal(0, 1, 50_000)
    assert psi(a, b) < 0.01
    assert psi(a, b + 1.0) > 0.5


def test_few_valued_numbers_are_tested_as_categories(frame_factory):
    ref = frame_factory(3000, 0).assign(level=lambda d: d.index % 3)
    result = detect_drift(ref, ref)
    level = next(f for f in result.features if f.column == "level")
    assert level.test == "jensenshannon" and not level.drifted


def test_type_mismatch_is_named(frame_factory):
    ref = frame_factory(200, 0)
    with pytest.raises(DriftError, match="'age' is numeric"):
        detect_drift(ref, ref.assign(age=ref["age"].astype(str)))
    with pytest.raises(DriftError, match="'nope'"):
        detect_drift(ref, ref, columns=["nope"])


def test_the_target_is_reported_but_kept_out_of_the_drift_share(frame_factory):
    ref, cur = frame_factory(3000, 0), frame_factory(3000, 1, 1.0)
    ref["label"] = np.where(ref["visits"] > 25, "yes", "no")
    cur["label"] = np.where(cur["visits"] > 5, "yes", "no")  # the label drifts hard
    everything = detect_drift(ref, cur)  # no target named: every column counts, as before
    assert len(everything.features) == 6 and "label" in everything.drifted_features
    assert "of 6 features drifted" in everything.reason

    result = detect_drift(ref, cur, target="label")
    assert [f.column for f in result.features] == ["age", "income", "visits", "city", "member"]
    assert result.target == "label" and result.target_drift.drifted
    assert not result.target_counted and "label" not in result.drifted_features
    assert result.drift_share == pytest.approx(len(result.drifted_features) / 5)
    assert result.columns[-1].role == "target" and len(result.columns) == 6
    assert "of 5 features drifted" in result.reason
    assert result.reason.endswith("the target 'label' drifted (not counted in the share)")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["target"] == "label" and data["target_drift"]["role"] == "target"
    assert data["target_counted"] is False

    # count_target keeps today's decision (monitor counts the label) and says so.
    counted = detect_drift(ref, cur, target="label", count_target=True)
    assert counted.drift_share == everything.drift_share
    assert counted.dataset_drift == everything.dataset_drift and counted.target_counted
    assert "of 6 columns drifted (5 features and the target 'label'" in counted.reason


def test_forked_scan_gives_the_same_result(frame_factory, tmp_path):
    """``fork=True`` (the CLI's): the current file is scanned in a child, same JSON."""
    frame_factory(5000, 0).to_parquet(tmp_path / "ref.parquet", index=False)
    frame_factory(5000, 1, 1.0).to_parquet(tmp_path / "cur.parquet", index=False)
    paths = (tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    assert detect_drift(*paths, fork=True).to_json() == detect_drift(*paths).to_json()


def test_forked_scan_raises_the_childs_error(frame_factory, tmp_path):
    frame_factory(500, 0).to_parquet(tmp_path / "ref.parquet", index=False)
    (tmp_path / "cur.parquet").write_bytes(b"not parquet")
    with pytest.raises(StatisticsError) as forked:
        detect_drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet", fork=True)
    with pytest.raises(StatisticsError) as plain:
        detect_drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    assert type(forked.value) is type(plain.value) and str(forked.value) == str(plain.value)


def test_forked_scan_reaps_its_child_when_the_reference_fails(frame_factory, tmp_path):
    import os

    frame_factory(500, 0).to_parquet(tmp_path / "cur.parquet", index=False)
    (tmp_path / "ref.parquet").write_bytes(b"not parquet")
    with pytest.raises(StatisticsError):
        detect_drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet", fork=True)
    try:  # no finished child left unreaped (a zombie); other live children may exist
        assert os.waitpid(-1, os.WNOHANG)[0] == 0
    except ChildProcessError:
        pass  # no child at all


def test_psi_from_sorted_samples_is_numpys_histogram_figure():
    """PSI counts bins by searching the sorted samples: the same as ``np.histogram``."""
    from kfp_mlops.data.drift import _EPS

    def by_histogram(reference, current, bins=10):
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref = np.maximum(np.histogram(reference, edges)[0] / len(reference), _EPS)
        cur = np.maximum(np.histogram(current, edges)[0] / len(current), _EPS)
        return float(np.sum((cur - ref) * np.log(cur / ref)))

    rng = np.random.default_rng(0)
    for _ in range(100):  # ties on the edges, few values, unequal sizes
        a = rng.integers(0, rng.integers(1, 20), rng.integers(1, 3000)).astype(float)
        b = rng.normal(0, 3, rng.integers(1, 3000)).round(int(rng.integers(0, 3)))
        assert psi(a, b) == by_histogram(a, b) and psi(b, a) == by_histogram(b, a)
