"""Drift's own survival functions against scipy's, on a grid wide enough to hold every
figure a drift test produces (tiny, decisive and near-one p-values)."""

import math

import numpy as np
import pytest
from scipy import special

from kfp_mlops.data.pvalues import chi2_sf, kolmogorov_sf


def _relative_error(ours: float, theirs: float) -> float:
    if theirs < 1e-290:  # scipy's denormals: both must be as good as zero
        return abs(ours - theirs)
    return abs(ours - theirs) / theirs


def test_kolmogorov_sf_is_scipys():
    grid = np.concatenate([np.linspace(0, 30, 3001), np.geomspace(1e-3, 30, 500),
                           [0.82, np.nextafter(0.82, 1)]])
    worst = max(_relative_error(kolmogorov_sf(float(x)), float(special.kolmogorov(x)))
                for x in grid)
    assert worst < 1e-12


@pytest.mark.parametrize("dof", [*range(1, 41), 99, 100, 499, 1000])
def test_chi2_sf_is_scipys(dof):
    spread = dof + np.linspace(-4, 4, 41) * math.sqrt(2 * dof)  # around the mean too
    grid = np.concatenate([np.geomspace(1e-8, 5000, 300), spread[spread > 0]])
    worst = max(_relative_error(chi2_sf(float(s), dof), float(special.chdtrc(dof, s)))
                for s in grid)
    assert worst < 1e-11


def test_edges():
    assert kolmogorov_sf(0.0) == kolmogorov_sf(-1.0) == 1.0
    assert kolmogorov_sf(40.0) == 0.0
    assert math.isnan(kolmogorov_sf(math.nan))
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(math.inf, 3) == 0.0
    assert math.isnan(chi2_sf(math.nan, 3))
    with pytest.raises(ValueError, match="whole number >= 1, got 0"):
        chi2_sf(1.0, 0)
    with pytest.raises(ValueError, match="got 1.5"):
        chi2_sf(1.0, 1.5)
