"""The streaming drift check: current data in chunks against a baseline profile, then one decision.

Each chunk is counted into the baseline's own bins and dropped, so memory is bins x features plus
one chunk, whatever the size of the data. Per feature the check reports the missing rate and its
change, PSI, the KS statistic with its p-value, the Jensen-Shannon distance, the Wasserstein-1
distance also in training standard deviations, and the chi-square test on the PSI bins (numeric),
or the chi-square test, PSI, Jensen-Shannon and total variation distances and the share of new
values (categorical).

Every rule pairs an effect size with a significance test at ``alpha / features`` (Bonferroni, so
that ``ks_pvalue`` and ``chi2_pvalue`` are the data set's false-positive rates, not each
feature's); a threshold set to ``None`` turns its rule off. A feature is flagged when any rule fires:

- ``ks_statistic`` (numeric): KS statistic at or above it, KS test significant;
- ``wasserstein_normed`` (numeric): Wasserstein-1 / training std at or above it, KS test significant;
- ``psi`` and ``js_distance``: the distance at or above it, chi-square test on the same bins
  significant;
- chi-square (categorical): total variation (the categorical KS statistic) at or above
  ``ks_statistic``, chi-square test significant;
- ``missing_rate``: the share of missing values changed by at least it, Fisher's test significant;
- a feature absent from every chunk of the data.

A feature with fewer than ``min_rows`` values (PSI and JS: also fewer than 5 per bin) is not judged
on its distribution: its status is "too few rows". The data set drifts when at least
``min_features_drifted`` features are flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airflow_dl_provider.drift import statistics as st
from airflow_dl_provider.drift.columns import category_counts, to_floats
from airflow_dl_provider.drift.histogram import SCALED_ABOVE, EdgeCounts, scale_for, sort_finite
from airflow_dl_provider.drift.profile import (
    MAX_CATEGORIES,
    OTHER,
    ROWS_PER_PSI_BIN,
    BaselineProfile,
    CategoricalProfile,
    NumericProfile,
)
from airflow_dl_provider.drift.thresholds import DriftThresholds
from airflow_dl_provider.exceptions import DriftInputError

NEW = "__new__"
DRIFTED, STABLE, TOO_FEW_ROWS = "drifted", "stable", "too few rows"


@dataclass
class FeatureDrift:
    """The verdict and scores of one feature; ``chart`` holds coarse proportions for the report.

    :param note: why a feature's distribution was not judged (too few rows), for the report.
    """

    name: str
    kind: str
    drifted: bool
    reasons: list[str]
    rows: int
    missing: int
    invalid: int
    scores: dict[str, float | None]
    chart: dict[str, list[Any]] = field(default_factory=dict)
    note: str = ""

    @property
    def status(self) -> str:
        """``drifted``, ``stable``, or ``too few rows`` (its distribution not judged)."""
        return DRIFTED if self.drifted else (TOO_FEW_ROWS if self.note else STABLE)

    def to_dict(self, ndigits: int | None = None) -> dict[str, Any]:
        scores = {k: _round(v, ndigits) for k, v in self.scores.items()}
        return {
            "kind": self.kind,
            "drifted": self.drifted,
            "status": self.status,
            "reasons": list(self.reasons),
            "note": self.note,
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

    @property
    def features_too_few_rows(self) -> list[str]:
        return [name for name, feature in self.features.items() if feature.status == TOO_FEW_ROWS]

    def summary(self, ndigits: int = 4) -> dict[str, Any]:
        """Small and JSON-safe, for XCom and an Asset event: the decision and rounded scores."""
        return {
            "drifted": self.drifted,
            "model_version": self.model_version,
            "features_drifted": self.features_drifted,
            "features_too_few_rows": self.features_too_few_rows,
            "rows": self.rows,
            "scores": {
                name: {k: r for k, v in feature.scores.items() if (r := _round(v, ndigits)) is not None}
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
            "features_too_few_rows": self.features_too_few_rows,
            "thresholds": self.thresholds.to_dict(),
            "features": {name: feature.to_dict() for name, feature in self.features.items()},
        }


@dataclass(frozen=True)
class _Rules:
    """The thresholds with each test's per-feature significance level (Bonferroni over ``tests``)."""

    thresholds: DriftThresholds
    tests: int

    def alpha(self, level: float | None) -> float | None:
        return None if level is None else level / max(self.tests, 1)

    def fire(
        self, label: str, effect: float | None, limit: float | None, pvalue: float | None, level: float | None
    ) -> str | None:
        """The reason when ``effect >= limit`` and ``pvalue < level / tests``, else ``None``."""
        alpha = self.alpha(level)
        if limit is None or effect is None or not effect >= limit:
            return None
        if alpha is not None and (pvalue is None or not pvalue < alpha):
            return None
        significance = f", p {pvalue:.3g} < {alpha:.3g}" if alpha is not None and pvalue is not None else ""
        return f"{label} {effect:.4g} >= {limit:g}{significance}"


class _Counts:
    """What both kinds count: rows, missing values, and chunks that lacked the column."""

    def __init__(self, baseline_missing_rate: float) -> None:
        self.baseline_missing_rate = baseline_missing_rate
        self.rows = self.missing = self.absent = 0

    def lacking(self, rows: int) -> None:
        self.rows += rows
        self.missing += rows
        self.absent += rows

    def missing_scores(self, profile: NumericProfile | CategoricalProfile) -> dict[str, float | None]:
        rate = self.missing / self.rows if self.rows else 0.0
        present = self.rows - self.missing
        pvalue = st.fisher_exact_pvalue(profile.count, profile.missing, present, self.missing)
        return {
            "missing_rate": rate,
            "missing_rate_change": rate - self.baseline_missing_rate,
            "missing_pvalue": pvalue,
        }

    def common_reasons(self, scores: Mapping[str, float | None], rules: _Rules) -> list[str]:
        reasons = []
        if self.rows and self.absent == self.rows:
            reasons.append(f"absent from the data (all {self.rows} rows)")
        change = scores.get("missing_rate_change")
        limit = rules.thresholds.missing_rate
        reason = rules.fire(
            f"missing_rate {scores['missing_rate']:.4g} (baseline {self.baseline_missing_rate:.4g}) changed by",
            abs(change) if change is not None else None,
            limit,
            scores.get("missing_pvalue"),
            rules.thresholds.chi2_pvalue,
        )
        return [*reasons, reason] if reason else reasons


def _too_few(values: int, rules: _Rules) -> str:
    if values >= rules.thresholds.min_rows:
        return ""
    return f"too few rows: {values} values, min_rows {rules.thresholds.min_rows}; distribution not judged"


def _bin_reasons(scores: Mapping[str, float | None], rules: _Rules, values: int, bins: int) -> list[str]:
    """PSI and JS, gated by the chi-square test on their bins (needs about 5 values per bin)."""
    if values < ROWS_PER_PSI_BIN * bins:
        return []
    t = rules.thresholds
    pvalue = scores.get("chi2_pvalue")
    found = [
        rules.fire("psi", scores.get("psi"), t.psi, pvalue, t.chi2_pvalue),
        rules.fire("js_distance", scores.get("js_distance"), t.js_distance, pvalue, t.chi2_pvalue),
    ]
    return [r for r in found if r]


class _NumericCounts(_Counts):
    """Counts of the current data in the baseline's fine bins, plus what Wasserstein needs."""

    def __init__(self, profile: NumericProfile) -> None:
        super().__init__(profile.missing_rate)
        self.profile = profile
        magnitude = max(abs(float(profile.edges[0])), abs(float(profile.edges[-1])))
        self.bins = EdgeCounts(profile.edges, scale=scale_for(magnitude, SCALED_ABOVE))
        self.invalid = 0
        self.example: str | None = None

    def update(self, values: Any) -> None:
        floats, invalid, example = to_floats(values)
        ordered, nan, infinite = sort_finite(floats)
        self.rows += floats.size
        self.invalid += invalid + infinite
        self.missing += nan - invalid
        if self.example is None and (invalid or infinite):
            self.example = example if invalid else "inf"
        self.bins.add(ordered)

    def _scores(self, m: int, psi_bins: int) -> tuple[dict[str, float | None], dict[str, list[Any]]]:
        profile, counts, edges = self.profile, self.bins.counts, self.profile.edges
        ks = st.binned_ks(profile.cdf(), np.cumsum(counts[: edges.size]) / m)
        groups = profile.psi_groups(psi_bins)
        ref_groups = np.add.reduceat(profile.counts, groups)
        cur_groups = np.add.reduceat(counts, groups)
        p, q = st.proportions(ref_groups), st.proportions(cur_groups)
        # Both sides in units of the check's scale (1 unless values come near the float limit).
        unit = self.bins.scale
        ref_sums = profile.means / unit * profile.counts
        distance = st.binned_wasserstein(profile.counts, ref_sums, counts, self.bins.sums)
        scores: dict[str, float | None] = {
            "psi": st.psi(p, q),
            "js_distance": st.js_distance(p, q),
            "chi2_pvalue": st.chi2_homogeneity(ref_groups, cur_groups)[1],
            "ks_statistic": ks,
            "ks_pvalue": st.ks_pvalue(ks, profile.count, m),
            "ks_error_bound": profile.ks_error_bound,
            "wasserstein": distance * unit,
            "wasserstein_normed": distance / (profile.std / unit) if profile.std > 0 else None,
        }
        # Coarse group g holds fine bins groups[g] .. groups[g+1]-1, so its top edge is edges[groups[g+1]-1].
        tops = edges[groups[1:] - 1].tolist()
        labels = [f"<= {t:.4g}" for t in tops] + ([f"> {tops[-1]:.4g}"] if tops else ["all"])
        return scores, {"labels": labels, "reference": p.tolist(), "current": q.tolist()}

    def result(self, rules: _Rules, psi_bins: int) -> FeatureDrift:
        m = int(self.bins.counts.sum())
        scores = self.missing_scores(self.profile)
        chart: dict[str, list[Any]] = {}
        reasons = self.common_reasons(scores, rules)
        note = _too_few(m, rules)
        if m:
            distribution, chart = self._scores(m, psi_bins)
            scores.update(distribution)
        if m and not note:
            t = rules.thresholds
            found = [
                rules.fire("ks", scores["ks_statistic"], t.ks_statistic, scores["ks_pvalue"], t.ks_pvalue),
                rules.fire(
                    "wasserstein_normed",
                    scores["wasserstein_normed"],
                    t.wasserstein_normed,
                    scores["ks_pvalue"],
                    t.ks_pvalue,
                ),
                *_bin_reasons(scores, rules, m, len(chart["reference"])),
            ]
            reasons += [r for r in found if r]
        return _feature(self, "numeric", reasons, scores, chart, note, self.invalid)


def _feature(
    counts: _Counts,
    kind: str,
    reasons: list[str],
    scores: dict[str, float | None],
    chart: dict[str, list[Any]],
    note: str,
    invalid: int,
) -> FeatureDrift:
    profile: NumericProfile | CategoricalProfile = counts.profile  # type: ignore[attr-defined]
    return FeatureDrift(
        name=profile.name,
        kind=kind,
        drifted=bool(reasons),
        reasons=reasons,
        rows=counts.rows,
        missing=counts.missing,
        invalid=invalid,
        scores=scores,
        chart=chart,
        note=note if not reasons else "",
    )


class _CategoricalCounts(_Counts):
    def __init__(self, profile: CategoricalProfile) -> None:
        super().__init__(profile.missing_rate)
        self.profile = profile
        self.index = {c: i for i, c in enumerate(profile.categories)}
        self.other = self.index.get(OTHER)
        self.counts = np.zeros(len(profile.categories), dtype=np.int64)
        # Values the baseline never saw; bounded, the rest pooled, so memory stays flat.
        self.new: dict[str, int] = {}

    def update(self, values: Any) -> None:
        counts, missing = category_counts(values)
        self.rows += len(values)
        self.missing += missing
        tail = self.profile.tail
        for value, count in counts.items():
            index = self.index.get(value)
            if index is None and self.other is not None and tail is not None and value in tail:
                index = self.other  # a value the training data had, pooled in its long tail
            if index is not None:
                self.counts[index] += count
            elif value in self.new or len(self.new) < MAX_CATEGORIES:
                self.new[value] = self.new.get(value, 0) + count
            else:
                self.new[NEW] = self.new.get(NEW, 0) + count

    def result(self, rules: _Rules) -> FeatureDrift:
        ref = np.concatenate([self.profile.counts, np.zeros(len(self.new), dtype=np.int64)])
        cur = np.concatenate([self.counts, np.asarray(list(self.new.values()), dtype=np.int64)])
        m = int(cur.sum())
        scores = self.missing_scores(self.profile)
        reasons = self.common_reasons(scores, rules)
        note = _too_few(m, rules)
        chart: dict[str, list[Any]] = {}
        if m and ref.sum():
            statistic, pvalue, dof = st.chi2_homogeneity(ref, cur)
            p, q = st.proportions(ref), st.proportions(cur)
            scores.update(
                {
                    "psi": st.psi(p, q),
                    "chi2_statistic": statistic,
                    "chi2_pvalue": pvalue,
                    "chi2_dof": float(dof),
                    "js_distance": st.js_distance(p, q),
                    "total_variation": st.total_variation(ref, cur),
                    "new_values": float(sum(self.new.values()) / m),
                }
            )
            labels = [*self.profile.categories, *self.new]
            top = np.argsort(-(p + q), kind="stable")[:12]
            chart = {
                "labels": [labels[i] for i in top],
                "reference": p[top].tolist(),
                "current": q[top].tolist(),
            }
            if not note:
                t = rules.thresholds
                tv = rules.fire(
                    "chi2 total_variation", scores["total_variation"], t.ks_statistic, pvalue, t.chi2_pvalue
                )
                reasons += [r for r in (tv, *_bin_reasons(scores, rules, m, int(dof) + 1)) if r]
        return _feature(self, "categorical", reasons, scores, chart, note, 0)


class DriftCheck:
    """Count chunks of current data against a baseline; :meth:`result` gives the decision.

    :param features: check only these (each must be in the baseline); by default every feature of
        the baseline, and a data column the baseline lacks is an error. A feature a chunk lacks
        counts as missing in that chunk's rows.
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
        self.seen: set[str] = set()

    def update(self, chunk: Mapping[str, Any]) -> None:
        if not self.subset:
            extra = sorted(set(chunk) - set(self.profile.features))
            if extra:
                raise DriftInputError(
                    f"{self.where}: has column(s) {extra} that the baseline lacks; pass features=[...] or rebuild the baseline"
                )
        rows = max((len(chunk[f]) for f in self.features if f in chunk), default=0)
        rows = rows or max((len(v) for v in chunk.values()), default=0)
        self.rows += rows
        for name, counts in self.counts.items():
            if name in chunk:
                self.seen.add(name)
                counts.update(chunk[name])
            else:
                counts.lacking(rows)

    def result(self) -> DriftResult:
        if self.rows == 0:
            raise DriftInputError(f"{self.where}: is empty (no rows to check)")
        if not self.seen:
            raise DriftInputError(
                f"{self.where}: has none of the baseline's features {self.features[:10]}; is it the right data?"
            )
        rules = _Rules(self.thresholds, len(self.counts))
        features: dict[str, FeatureDrift] = {}
        for name, counts in self.counts.items():
            if isinstance(counts, _NumericCounts):
                share = counts.invalid / max(counts.rows, 1)
                if share > self.thresholds.max_invalid_fraction:
                    raise DriftInputError(
                        f"{self.where}: numeric column {name!r} has {share:.1%} non-numeric values "
                        f"(e.g. {counts.example!r}), more than max_invalid_fraction {self.thresholds.max_invalid_fraction:.1%}"
                    )
                features[name] = counts.result(rules, self.profile.psi_bins)
            else:
                features[name] = counts.result(rules)
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
