"""The statistics against scipy's own, computed from raw samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from airflow_dl_provider.drift import statistics as st


@pytest.mark.parametrize(("statistic", "n", "m"), [(0.3, 40, 30), (0.05, 2000, 500), (0.01, 10**6, 10**5)])
def test_ks_pvalue_is_kstwobign_at_stephens_corrected_lambda(statistic: float, n: int, m: int) -> None:
    root = np.sqrt(n * m / (n + m))
    lam = (root + 0.12 + 0.11 / root) * statistic
    assert st.ks_pvalue(statistic, n, m) == pytest.approx(stats.kstwobign.sf(lam), rel=1e-12, abs=1e-300)
    assert st.ks_pvalue(statistic, 0, m) == 1.0


@pytest.mark.parametrize(
    ("x", "dof"), [(0.5, 1), (3.0, 2), (10.0, 5), (100.0, 80), (50.0, 3), (1e-3, 10), (900.0, 999)]
)
def test_chi2_sf_matches_scipy(x: float, dof: int) -> None:
    assert st.chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-12, abs=1e-300)


def test_chi2_homogeneity_matches_chi2_contingency() -> None:
    ref = np.array([500, 300, 200, 0])
    cur = np.array([380, 320, 200, 100])
    statistic, pvalue, dof = st.chi2_homogeneity(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected[0])
    assert pvalue == pytest.approx(expected[1], rel=1e-9, abs=1e-300)
    assert dof == expected[2]


def test_psi_is_the_direct_formula() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4])
    q = np.array([0.25, 0.25, 0.25, 0.25])
    assert st.psi(p, q) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    # An empty bin is floored at epsilon, not infinite.
    assert np.isfinite(st.psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])))


def test_js_distance_matches_scipy() -> None:
    p = np.array([10.0, 20.0, 30.0, 0.0])
    q = np.array([5.0, 25.0, 20.0, 10.0])
    assert st.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert st.js_distance(p, p) == 0.0


def test_ks_pvalue_tracks_ks_2samp() -> None:
    rng = np.random.default_rng(3)
    for n, m, shift in [(2000, 500, 0.1), (5000, 5000, 0.05), (300, 200, 0.3)]:
        a, b = rng.normal(size=n), rng.normal(shift, 1, size=m)
        exact = stats.ks_2samp(a, b, method="asymp")
        ours = st.ks_pvalue(exact.statistic, n, m)
        assert ours == pytest.approx(exact.pvalue, rel=0.15, abs=2e-3), (n, m, shift)
