"""The drift statistics, computed from binned counts with numpy; p-values from scipy's special functions.

Every function here takes counts (or proportions) over bins that the reference and the current data
share, so a check never holds the raw data: memory is bins x features, whatever the row count.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Floor for a bin's proportion in PSI, so an empty bin costs a large but finite amount.
PSI_EPSILON = 1e-4


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided p-value of a two-sample KS statistic, from the asymptotic Kolmogorov distribution.

    ``scipy.special.kolmogorov`` (``scipy.stats.kstwobign.sf``) at Stephens' small-sample corrected
    ``lam = (sqrt(ne) + 0.12 + 0.11/sqrt(ne)) * D`` with the effective size ``ne = n*m/(n+m)``, which
    tracks ``scipy.stats.ks_2samp(method="asymp")`` closely for ``ne`` above a few dozen. Not
    ``kstwo.sf(D, round(ne))``, what ``ks_2samp`` itself calls: its cost grows with ``ne`` (half a
    second per feature at 400,000 rows), and a drift check scores every feature of every batch.
    """
    from scipy.special import kolmogorov

    if n <= 0 or m <= 0:
        return 1.0
    ne = n * m / (n + m)
    root = math.sqrt(ne)
    return float(kolmogorov((root + 0.12 + 0.11 / root) * statistic))


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with ``dof`` degrees of freedom: ``scipy.stats.chi2.sf``.

    Through ``scipy.special.chdtrc``, the same function without loading ``scipy.stats`` (a second
    and more of import in a fresh worker).
    """
    from scipy.special import chdtrc

    if dof <= 0 or x <= 0.0:
        return 1.0
    return float(chdtrc(dof, x))


def chi2_homogeneity(
    reference: NDArray[np.float64], current: NDArray[np.float64]
) -> tuple[float, float, int]:
    """Chi-square test that two samples of category counts come from one distribution.

    The 2 x k contingency test (``scipy.stats.chi2_contingency(correction=False)``): a category
    only one side has seen is expected on both sides in proportion, so new values raise the
    statistic instead of dividing by zero. Categories neither side has are dropped.

    :return: ``(statistic, p_value, degrees_of_freedom)``
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    n, m = ref.sum(), cur.sum()
    dof = int(ref.size) - 1
    if dof < 1 or n <= 0 or m <= 0:
        return 0.0, 1.0, max(dof, 0)
    column = ref + cur
    total = n + m
    expected_ref = column * (n / total)
    expected_cur = column * (m / total)
    statistic = float(
        ((ref - expected_ref) ** 2 / expected_ref).sum() + ((cur - expected_cur) ** 2 / expected_cur).sum()
    )
    return statistic, chi2_sf(statistic, dof), dof


def proportions(counts: NDArray[np.float64]) -> NDArray[np.float64]:
    total = float(np.sum(counts))
    return np.asarray(counts, dtype=np.float64) / total if total > 0 else np.zeros(len(counts))


def psi(reference: NDArray[np.float64], current: NDArray[np.float64], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))`` over proportions, each floored at ``epsilon``."""
    p = np.maximum(np.asarray(reference, dtype=np.float64), epsilon)
    q = np.maximum(np.asarray(current, dtype=np.float64), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: NDArray[np.float64], current: NDArray[np.float64]) -> float:
    """Jensen-Shannon distance, base 2 (in [0, 1]): ``scipy.spatial.distance.jensenshannon(p, q, base=2)``."""
    p = proportions(reference)
    q = proportions(current)
    mid = (p + q) / 2.0

    def _kl(a: NDArray[np.float64]) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / mid[nz])))

    divergence = max(0.0, (_kl(p) + _kl(q)) / 2.0)
    return math.sqrt(min(1.0, divergence))


def total_variation(reference: NDArray[np.float64], current: NDArray[np.float64]) -> float:
    """The largest difference in probability of any set of bins: half the L1 distance."""
    return float(np.abs(proportions(reference) - proportions(current)).sum() / 2.0)


def binned_ks(ref_cdf: NDArray[np.float64], cur_cdf: NDArray[np.float64]) -> float:
    """KS statistic from the two empirical CDFs evaluated at the same edges: ``max |F(e) - G(e)|``.

    Exact at the edges; between two edges the true supremum can exceed it by at most the smaller of
    the two samples' masses strictly inside that bin (both CDFs are monotone there), so with the
    baseline's quantile edges the error is at most the baseline's largest within-bin mass
    (``NumericProfile.ks_error_bound``, about 1/bins).
    """
    if ref_cdf.size == 0:
        return 0.0
    return float(np.max(np.abs(ref_cdf - cur_cdf)))


def binned_wasserstein(
    ref_counts: NDArray[Any],
    ref_sums: NDArray[np.float64],
    cur_counts: NDArray[Any],
    cur_sums: NDArray[np.float64],
) -> float:
    """Wasserstein-1 distance ``integral |F - G| dx`` from the two samples' counts and sums per bin.

    Each bin's mass sits at its mean (sum / count) rather than at its middle, which keeps the wide
    tail bins of a heavy-tailed feature honest; the current data's values beyond the baseline's
    range fall in the first and last bins and so enter with their own mean. The result is exact
    for the two binned (point-mass) distributions; it differs from the raw samples' distance only by
    how differently the two samples spread inside one bin.
    """
    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    cur_counts = np.asarray(cur_counts, dtype=np.float64)
    n, m = ref_counts.sum(), cur_counts.sum()
    if n <= 0 or m <= 0:
        return 0.0
    ref_keep, cur_keep = ref_counts > 0, cur_counts > 0
    points = np.concatenate(
        [ref_sums[ref_keep] / ref_counts[ref_keep], cur_sums[cur_keep] / cur_counts[cur_keep]]
    )
    weights = np.concatenate([ref_counts[ref_keep] / n, -cur_counts[cur_keep] / m])
    order = np.argsort(points, kind="stable")
    points, gap = points[order], np.cumsum(weights[order])
    return float(np.sum(np.abs(gap[:-1]) * np.diff(points)))


#: Past this many possible tables Fisher's sum costs more than it is worth: the chi-square test on
#: the same 2 x 2 table is then as accurate.
FISHER_MAX_SUPPORT = 1_000_000


def fisher_exact_pvalue(ref_present: int, ref_missing: int, cur_present: int, cur_missing: int) -> float:
    """Two-sided Fisher exact test that two samples share one missing rate: ``scipy.stats.fisher_exact``.

    Exact at any size, so a 10-row batch with one missing value is not "significant" the way the
    chi-square approximation would call it. The hypergeometric terms come from
    ``scipy.special.gammaln``, without loading ``scipy.stats``.
    """
    from scipy.special import gammaln

    total, missing, current = (
        ref_present + ref_missing + cur_present + cur_missing,
        ref_missing + cur_missing,
        cur_present + cur_missing,
    )
    low, high = max(0, current - (total - missing)), min(current, missing)
    if high <= low:
        return 1.0
    if high - low > FISHER_MAX_SUPPORT:
        table_ref = np.array([ref_present, ref_missing], dtype=np.float64)
        table_cur = np.array([cur_present, cur_missing], dtype=np.float64)
        return chi2_homogeneity(table_ref, table_cur)[1]

    def log_choose(n: Any, k: Any) -> Any:
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    x = np.arange(low, high + 1, dtype=np.float64)
    log_pmf = log_choose(missing, x) + log_choose(total - missing, current - x) - log_choose(total, current)
    observed = log_pmf[cur_missing - low]
    # Tables as likely as the observed one or less, with scipy's relative tolerance for ties.
    as_extreme = log_pmf <= observed + 1e-7
    return float(min(1.0, np.exp(log_pmf[as_extreme]).sum()))
