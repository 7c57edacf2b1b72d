"""No false alarms: drift decisions control the false-discovery rate and need an effect.

Before: per-column tests at 0.05 with no multiple-testing control flagged 3 unshifted
columns of a 120-row window. Now the p-values are adjusted together
(Benjamini-Hochberg) and a column must also move by a minimum effect. Unshifted
windows of 100 to 500 rows, against a small reference (p-values decide) and a large one
(distances decide), flag no column across many seeds; shifted ones still are flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_mlops.data.drift import DriftThresholds, benjamini_hochberg, detect_drift

NUMERIC = [f"n{i}" for i in range(24)]
CATEGORICAL = [f"c{i}" for i in range(6)]


def table(rng: np.random.Generator, rows: int, shifted: tuple[str, ...] = ()) -> pd.DataFrame:
    data = {}
    for name in NUMERIC:
        values = rng.normal(size=rows) if name != "n1" else rng.lognormal(size=rows)
        data[name] = values + (0.8 if name in shifted else 0.0)
    for name in CATEGORICAL:
        p = [0.2, 0.5, 0.3] if name in shifted else [0.5, 0.3, 0.2]
        data[name] = rng.choice(["a", "b", "c"], rows, p=p)
    return pd.DataFrame(data)


@pytest.mark.parametrize("reference_rows", [800, 20_000])
def test_unshifted_windows_flag_no_column_across_seeds(reference_rows):
    reference = table(np.random.default_rng(0), reference_rows)
    flagged = {}
    for seed in range(60):
        rows = (100, 120, 250, 500)[seed % 4]
        found = detect_drift(reference, table(np.random.default_rng(seed + 1), rows))
        if found.drifted_features:
            flagged[(seed, rows)] = found.drifted_features
    assert not flagged, flagged


@pytest.mark.parametrize("reference_rows", [800, 20_000])
def test_shifted_windows_are_still_flagged(reference_rows):
    reference = table(np.random.default_rng(0), reference_rows)
    shifted = ("n0", "n5", "c1")
    for seed in range(10):
        rows = (100, 250, 500)[seed % 3]
        found = detect_drift(reference, table(np.random.default_rng(seed + 1), rows, shifted))
        assert set(shifted) <= set(found.drifted_features), (seed, rows, found.reason)


def test_without_the_correction_noise_is_flagged():
    """The control the correction replaces: uncorrected tests flag unshifted columns."""
    reference = table(np.random.default_rng(0), 800)
    loose = DriftThresholds(correction="none", min_wasserstein_normed=0.0,
                            min_jensenshannon=0.0)
    flagged = sum(len(detect_drift(reference, table(np.random.default_rng(s), 120),
                                   loose).drifted_features) for s in range(1, 21))
    assert flagged >= 5  # 30 columns x 20 windows x 5%: about 30 expected


def test_benjamini_hochberg_matches_the_textbook_procedure():
    p = [0.01, 0.04, 0.03, 0.005, float("nan"), 0.5]
    adjusted = benjamini_hochberg(p)
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.5 (m=5): 0.025, 0.025, 0.05, 0.05, 0.5
    assert adjusted[3] == pytest.approx(0.025) and adjusted[0] == pytest.approx(0.025)
    assert adjusted[2] == pytest.approx(0.05) and adjusted[1] == pytest.approx(0.05)
    assert np.isnan(adjusted[4]) and adjusted[5] == pytest.approx(0.5)


def test_the_adjusted_pvalue_is_reported_and_decides():
    reference = table(np.random.default_rng(0), 800)
    found = detect_drift(reference, table(np.random.default_rng(1), 200, ("n0",)))
    column = next(f for f in found.features if f.column == "n0")
    assert column.test == "ks" and column.drifted and column.threshold == 0.01
    assert column.score == column.metrics["adjusted_pvalue"] >= column.metrics["ks_pvalue"]
