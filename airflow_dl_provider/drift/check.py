"""The streaming drift check: current data in chunks against a baseline profile, then one decision.

Each chunk is counted into the baseline's own bins and dropped, so memory is bins x features plus
one chunk, whatever the size of the data. Per feature the check reports PSI, the KS statistic with
its p-value, the Jensen-Shannon distance and the Wasserstein-1 distance (numeric), or the
chi-square test, PSI, Jensen-Shannon and total variation distances (categorical).

A feature is flagged when any enabled rule fires (a threshold set to ``None`` is off):

- ``psi``: PSI at or above it;
- ``js_distance``: Jensen-Shannon distance at or above it;
- KS (numeric): the statistic at or above ``ks_statistic`` *and* its p-value below ``ks_pvalue``;
- chi-square (categorical): the p-value below ``chi2_pvalue`` *and* the total variation distance
  (the categorical analogue of the KS statistic) at or above ``ks_statistic``.

A p-value alone flags negligible shifts once there are millions of rows, hence the effect size
next to it. The data set drifts when at least ``min_features_drifted`` features are flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airflow_dl_provider.drift import statistics as st
from airflow_dl_provider.drift.profile import (
    MAX_CATEGORIES,
    MISSING_TOKENS,
    OTHER,
    BaselineProfile,
    CategoricalProfile,
    NumericProfile,
    as_categories,
    parse_numeric,
)
from airflow_dl_provider.drift.thresholds import DriftThresholds
from airflow_dl_provider.exceptions import DriftInputError

NEW = "__new__"


@dataclass
class FeatureDrift:
    """The verdict and scores of one feature; ``chart`` holds coarse proportions for the report."""

    name: str
    kind: str
    drifted: bool
    reasons: list[str]
    rows: int
    missing: int
    invalid: int
    scores: dict[str, float | None]
    chart: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self, ndigits: int | None = None) -> dict[str, Any]:
        scores = {k: _round(v, ndigits) for k, v in self.scores.items()}
        return {
            "kind": self.kind,
            "drifted": self.drifted,
            "reasons": list(self.reasons),
            "rows": self.rows,
            "missing": self.missing,
            "invalid": self.invalid,
            "scores": scores,
        }


def _round(value: float | None, ndigits: int | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    if ndigits is None:
        return float(value)
    # p-values of big samples are tiny: keep their magnitude instead of rounding them to 0.
    return float(f"{value:.{ndigits}g}") if 0 < abs(value) < 10**-ndigits else round(float(value), ndigits)


@dataclass
class DriftResult:
    """The outcome of one check: the decision, and every feature's scores."""

    drifted: bool
    features: dict[str, FeatureDrift]
    rows: int
    thresholds: DriftThresholds
    model_version: str | None = None
    baseline_created_at: str = ""

    @property
    def features_drifted(self) -> list[str]:
        return [name for name, feature in self.features.items() if feature.drifted]

    def summary(self, ndigits: int = 4) -> dict[str, Any]:
        """Small and JSON-safe, for XCom and an Asset event: the decision and rounded scores."""
        return {
            "drifted": self.drifted,
            "model_version": self.model_version,
            "features_drifted": self.features_drifted,
            "rows": self.rows,
            "scores": {
                name: {k: _round(v, ndigits) for k, v in feature.scores.items() if v is not None}
                for name, feature in self.features.items()
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, for the JSON report."""
        return {
            "drifted": self.drifted,
            "model_version": self.model_version,
            "baseline_created_at": self.baseline_created_at,
            "rows": self.rows,
            "features_drifted": self.features_drifted,
            "thresholds": self.thresholds.to_dict(),
            "features": {name: feature.to_dict() for name, feature in self.features.items()},
        }


class _NumericCounts:
    """Counts of the current data in the baseline's fine bins, plus what Wasserstein's tails need."""

    def __init__(self, profile: NumericProfile) -> None:
        self.profile = profile
        self.edges = profile.edges
        self.counts = np.zeros(profile.edges.size + 1, dtype=np.int64)
        self.rows = self.missing = self.invalid = 0
        self.sums = np.zeros(profile.edges.size + 1, dtype=np.float64)
        self._build_guess_table()
        self.example: str | None = None

    def update(self, values: Any) -> None:
        floats, invalid = parse_numeric(values)
        self.rows += floats.size
        if invalid:
            self.invalid += invalid
            if self.example is None:
                self.example = _first_invalid(values, floats)
        nan = np.isnan(floats)
        valid = floats[~nan] if nan.any() else floats
        self.missing += floats.size - valid.size - invalid
        index = self._bin_index(valid)
        self.counts += np.bincount(index, minlength=self.counts.size)
        self.sums += np.bincount(index, weights=valid, minlength=self.sums.size)

    def _build_guess_table(self) -> None:
        """A lookup table from a value's cell to its bin, on a grid that is fine where edges are dense.

        Cells are uniform in ``asinh((x - median) / iqr)``, which spreads heavy tails over few cells
        and the dense middle over many; 16 cells per bin put most values in a cell with no edge.
        """
        edges = self.edges
        n = edges.size
        self._center = float(edges[n // 2])
        self._spread = float(edges[(3 * n) // 4] - edges[n // 4]) or 1.0
        z = np.arcsinh((edges[[0, -1]] - self._center) / self._spread)
        self._z0 = float(z[0])
        self._cells = 16 * n
        self._scale = self._cells / float(z[1] - z[0]) if z[1] > z[0] else 0.0
        grid = np.sinh(np.linspace(z[0], z[1], self._cells + 1)) * self._spread + self._center
        self._table = np.searchsorted(edges, grid, side="left").astype(np.intp)
        self._padded = np.concatenate(([-np.inf], edges, [np.inf]))

    def _bin_index(self, values: np.ndarray) -> np.ndarray:
        """``np.searchsorted(edges, values, side="left")``, exactly, at a fraction of its cost.

        Guess each bin from the lookup table, verify ``edges[i-1] < x <= edges[i]`` for all of them
        at once, and binary-search only the values whose cell holds an edge.
        """
        cell = np.arcsinh((values - self._center) / self._spread)
        cell -= self._z0
        cell *= self._scale
        np.clip(cell, 0, self._cells, out=cell)
        index = self._table[cell.astype(np.intp)]
        wrong = ~((self._padded[index] < values) & (values <= self._padded[index + 1]))
        if wrong.any():
            index[wrong] = np.searchsorted(self.edges, values[wrong], side="left")
        return index

    def result(self, thresholds: DriftThresholds, psi_bins: int) -> FeatureDrift:
        profile = self.profile
        m = int(self.counts.sum())
        scores: dict[str, float | None] = {}
        reasons: list[str] = []
        chart: dict[str, list[Any]] = {}
        if m and profile.count:
            ref_cdf = profile.cdf()
            cur_cdf = np.cumsum(self.counts[: self.edges.size]) / m
            ks = st.binned_ks(ref_cdf, cur_cdf)
            groups = profile.psi_groups(psi_bins)
            ref_groups = np.add.reduceat(profile.counts, groups)
            cur_groups = np.add.reduceat(self.counts, groups)
            p, q = st.proportions(ref_groups), st.proportions(cur_groups)
            wasserstein = st.binned_wasserstein(profile.counts, profile.sums, self.counts, self.sums)
            scores = {
                "psi": st.psi(p, q),
                "ks_statistic": ks,
                "ks_pvalue": st.ks_pvalue(ks, profile.count, m),
                "ks_error_bound": profile.ks_error_bound,
                "js_distance": st.js_distance(p, q),
                "wasserstein": wasserstein,
                "wasserstein_normed": wasserstein / profile.std if profile.std > 0 else None,
            }
            reasons = _common_reasons(scores, thresholds)
            if _fires(ks, scores["ks_pvalue"], thresholds.ks_statistic, thresholds.ks_pvalue):
                reasons.append(
                    _reason("ks", ks, thresholds.ks_statistic, scores["ks_pvalue"], thresholds.ks_pvalue)
                )
            # Coarse group g holds fine bins groups[g] .. groups[g+1]-1, so its top edge is edges[groups[g+1]-1].
            tops = self.edges[groups[1:] - 1].tolist()
            labels = [f"<= {t:.4g}" for t in tops] + ([f"> {tops[-1]:.4g}"] if tops else ["all"])
            chart = {"labels": labels, "reference": p.tolist(), "current": q.tolist()}
        return FeatureDrift(
            name=profile.name,
            kind="numeric",
            drifted=bool(reasons),
            reasons=reasons,
            rows=self.rows,
            missing=self.missing,
            invalid=self.invalid,
            scores=scores,
            chart=chart,
        )


class _CategoricalCounts:
    def __init__(self, profile: CategoricalProfile) -> None:
        self.profile = profile
        self.index = {c: i for i, c in enumerate(profile.categories)}
        self.counts = np.zeros(len(profile.categories), dtype=np.int64)
        # Values the baseline never saw; bounded, the rest pooled, so memory stays flat.
        self.new: dict[str, int] = {}
        self.rows = self.missing = 0

    def update(self, values: Any) -> None:
        text = as_categories(values)
        self.rows += text.size
        uniques, counts = np.unique(text, return_counts=True)
        for value, count in zip(uniques.tolist(), counts.tolist(), strict=False):
            if value == "":
                self.missing += count
            elif value in self.index:
                self.counts[self.index[value]] += count
            elif OTHER in self.index:
                self.counts[self.index[OTHER]] += count
            elif value in self.new or len(self.new) < MAX_CATEGORIES:
                self.new[value] = self.new.get(value, 0) + count
            else:
                self.new[NEW] = self.new.get(NEW, 0) + count

    def result(self, thresholds: DriftThresholds) -> FeatureDrift:
        ref = np.concatenate([self.profile.counts, np.zeros(len(self.new), dtype=np.int64)])
        cur = np.concatenate([self.counts, np.asarray(list(self.new.values()), dtype=np.int64)])
        scores: dict[str, float | None] = {}
        reasons: list[str] = []
        chart: dict[str, list[Any]] = {}
        if cur.sum() and ref.sum():
            statistic, pvalue, dof = st.chi2_homogeneity(ref, cur)
            p, q = st.proportions(ref), st.proportions(cur)
            tv = st.total_variation(ref, cur)
            scores = {
                "psi": st.psi(p, q),
                "chi2_statistic": statistic,
                "chi2_pvalue": pvalue,
                "chi2_dof": float(dof),
                "js_distance": st.js_distance(p, q),
                "total_variation": tv,
                "new_values": float(sum(self.new.values()) / cur.sum()),
            }
            reasons = _common_reasons(scores, thresholds)
            if _fires(tv, pvalue, thresholds.ks_statistic, thresholds.chi2_pvalue):
                reasons.append(_reason("chi2", tv, thresholds.ks_statistic, pvalue, thresholds.chi2_pvalue))
            labels = [*self.profile.categories, *self.new]
            top = np.argsort(-(p + q), kind="stable")[:12]
            chart = {
                "labels": [labels[i] for i in top],
                "reference": p[top].tolist(),
                "current": q[top].tolist(),
            }
        return FeatureDrift(
            name=self.profile.name,
            kind="categorical",
            drifted=bool(reasons),
            reasons=reasons,
            rows=self.rows,
            missing=self.missing,
            invalid=0,
            scores=scores,
            chart=chart,
        )


def _fires(effect: float, pvalue: float | None, min_effect: float | None, alpha: float | None) -> bool:
    if min_effect is None and alpha is None:
        return False
    big = min_effect is None or effect >= min_effect
    significant = alpha is None or (pvalue is not None and pvalue < alpha)
    return big and significant


def _reason(
    test: str, effect: float, min_effect: float | None, pvalue: float | None, alpha: float | None
) -> str:
    parts = [f"{test} {effect:.4g}" + (f" >= {min_effect:g}" if min_effect is not None else "")]
    if alpha is not None and pvalue is not None:
        parts.append(f"p {pvalue:.3g} < {alpha:g}")
    return ", ".join(parts)


def _common_reasons(scores: Mapping[str, float | None], thresholds: DriftThresholds) -> list[str]:
    reasons = []
    for name, limit in (("psi", thresholds.psi), ("js_distance", thresholds.js_distance)):
        value = scores.get(name)
        if limit is not None and value is not None and value >= limit:
            reasons.append(f"{name} {value:.4g} >= {limit:g}")
    return reasons


def _first_invalid(values: Any, floats: np.ndarray) -> str | None:
    for raw, parsed in zip(np.asarray(values).ravel().tolist(), floats.tolist(), strict=False):
        if math.isnan(parsed) and raw is not None and str(raw).strip().lower() not in MISSING_TOKENS:
            return str(raw)[:40]
    return None


class DriftCheck:
    """Count chunks of current data against a baseline; :meth:`result` gives the decision.

    :param features: check only these (each must be in the baseline and the data); by default every
        feature of the baseline, and a data column the baseline lacks is an error.
    """

    def __init__(
        self,
        profile: BaselineProfile,
        thresholds: DriftThresholds | None = None,
        features: Sequence[str] | None = None,
        where: str = "data",
    ) -> None:
        self.profile = profile
        self.thresholds = thresholds or DriftThresholds()
        self.where = where
        if features is not None:
            unknown = [f for f in features if f not in profile.features]
            if unknown:
                raise DriftInputError(
                    f"features: {unknown} are not in the baseline ({list(profile.features)[:10]}); rebuild the baseline with them"
                )
        self.features = list(features) if features is not None else list(profile.features)
        self.subset = features is not None
        self.counts: dict[str, _NumericCounts | _CategoricalCounts] = {
            name: _NumericCounts(p) if isinstance(p, NumericProfile) else _CategoricalCounts(p)
            for name, p in ((n, profile.features[n]) for n in self.features)
        }
        self.rows = 0

    def update(self, chunk: Mapping[str, Any]) -> None:
        columns = set(chunk)
        absent = [f for f in self.features if f not in columns]
        if absent:
            raise DriftInputError(
                f"{self.where}: lacks baseline feature(s) {absent}; pass features=[...] to check a subset"
            )
        if not self.subset:
            extra = sorted(columns - set(self.profile.features))
            if extra:
                raise DriftInputError(
                    f"{self.where}: has column(s) {extra} that the baseline lacks; pass features=[...] or rebuild the baseline"
                )
        sizes = {len(chunk[f]) for f in self.features}
        self.rows += max(sizes) if sizes else 0
        for name in self.features:
            self.counts[name].update(chunk[name])

    def result(self) -> DriftResult:
        if self.rows == 0:
            raise DriftInputError(f"{self.where}: is empty (no rows to check)")
        features: dict[str, FeatureDrift] = {}
        for name, counts in self.counts.items():
            if isinstance(counts, _NumericCounts):
                share = counts.invalid / max(counts.rows, 1)
                if share > self.thresholds.max_invalid_fraction:
                    raise DriftInputError(
                        f"{self.where}: numeric column {name!r} has {share:.1%} non-numeric values "
                        f"(e.g. {counts.example!r}), more than max_invalid_fraction {self.thresholds.max_invalid_fraction:.1%}"
                    )
                features[name] = counts.result(self.thresholds, self.profile.psi_bins)
            else:
                features[name] = counts.result(self.thresholds)
        flagged = sum(f.drifted for f in features.values())
        return DriftResult(
            drifted=flagged >= self.thresholds.min_features_drifted,
            features=features,
            rows=self.rows,
            thresholds=self.thresholds,
            model_version=self.profile.model_version,
            baseline_created_at=self.profile.created_at,
        )


def check_drift(
    profile: BaselineProfile,
    chunks: Iterable[Mapping[str, Any]] | Mapping[str, Any],
    thresholds: DriftThresholds | None = None,
    features: Sequence[str] | None = None,
    where: str = "data",
) -> DriftResult:
    """Run a :class:`DriftCheck` over ``chunks`` (or one ``{column: values}`` mapping)."""
    check = DriftCheck(profile, thresholds, features, where)
    for chunk in [chunks] if isinstance(chunks, Mapping) else chunks:
        check.update(chunk)
        # Drop it before the reader builds the next one: memory is one chunk, not two.
        del chunk
    return check.result()
