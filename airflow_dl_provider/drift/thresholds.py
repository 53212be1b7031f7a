"""When a feature counts as drifted: the thresholds, checked on their own (no numpy), so an operator
can refuse bad ones when its DAG is parsed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.exceptions import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Mapping

# Non-numeric values a numeric column may hold (as a share) before the check fails.
DEFAULT_MAX_INVALID_FRACTION = 0.01


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted, and how many of them make the data set drift.

    Every rule pairs an effect size with a significance test, so that neither noise in a small
    batch nor a negligible shift in a huge one flags; ``docs/drift.rst`` has the measurements behind
    the defaults. A threshold set to ``None`` turns its rule off.

    :param psi: PSI at or above this, with the chi-square test on the same bins significant, flags
        a feature (> 0; 0.1 is a small shift, 0.2 a large one).
    :param ks_statistic: the smallest KS statistic (or, for categories, total variation) that
        flags a feature with a significant test, in (0, 1].
    :param wasserstein_normed: the smallest Wasserstein-1 distance, in training standard
        deviations, that flags a numeric feature with a significant KS test (> 0).
    :param js_distance: Jensen-Shannon distance (base 2) at or above this, with the chi-square
        test significant, flags a feature, in (0, 1].
    :param missing_rate: the smallest change in the share of missing values that flags a feature
        with a significant Fisher test, in (0, 1].
    :param ks_pvalue: the KS test's significance level, for the whole data set: each feature is
        tested at ``ks_pvalue / features`` (Bonferroni), in (0, 1).
    :param chi2_pvalue: the same for the chi-square tests (categories, PSI and JS bins) and the
        missing-rate test, in (0, 1).
    :param min_rows: values a feature needs before its distribution is judged; below, the report
        says "too few rows" (a missing-rate change is still judged) (>= 1).
    :param min_features_drifted: flagged features needed for the data set to drift (>= 1).
    :param max_invalid_fraction: the share of non-numeric values a numeric column may hold before
        the check fails instead of ignoring them, in [0, 1).
    """

    psi: float | None = 0.2
    ks_statistic: float | None = 0.05
    wasserstein_normed: float | None = 0.1
    js_distance: float | None = 0.05
    missing_rate: float | None = 0.05
    ks_pvalue: float | None = 0.05
    chi2_pvalue: float | None = 0.05
    min_rows: int = 100
    min_features_drifted: int = 1
    max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION

    def __post_init__(self) -> None:
        def check(name: str, value: Any, low: float, high: float, low_open: bool, high_open: bool) -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise DriftInputError(f"thresholds.{name}: must be a number, got {value!r}")
            too_low = value <= low if low_open else value < low
            too_high = value >= high if high_open else value > high
            if too_low or too_high:
                interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                raise DriftInputError(f"thresholds.{name}: must be in {interval}, got {value!r}")

        check("psi", self.psi, 0.0, math.inf, True, True)
        check("ks_statistic", self.ks_statistic, 0.0, 1.0, True, False)
        check("ks_pvalue", self.ks_pvalue, 0.0, 1.0, True, True)
        check("wasserstein_normed", self.wasserstein_normed, 0.0, math.inf, True, True)
        check("js_distance", self.js_distance, 0.0, 1.0, True, False)
        check("missing_rate", self.missing_rate, 0.0, 1.0, True, False)
        check("chi2_pvalue", self.chi2_pvalue, 0.0, 1.0, True, True)
        check("max_invalid_fraction", self.max_invalid_fraction, 0.0, 1.0, False, True)
        for name in ("min_rows", "min_features_drifted"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise DriftInputError(f"thresholds.{name}: must be an integer, got {value!r}")
            if value < 1:
                raise DriftInputError(f"thresholds.{name}: must be >= 1, got {value}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> DriftThresholds:
        """From a dict (a rendered template, a config): an unknown key is a one-line error."""
        if not values:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DriftInputError(f"thresholds: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
