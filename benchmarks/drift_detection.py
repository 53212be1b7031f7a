"""Which drift rules catch a moderate shift and stay quiet without one: the measurements behind the defaults.

One data set of numeric features (six distributions, each unshifted, moved by 0.15 of its standard
deviation, and scaled 1.3x around its mean) and two categorical ones (unshifted, and 5 points of
share moved from the most to the least frequent category), and a normal feature whose missing rate
is 2% (unchanged, and up to 10%). The baseline is built from
``--reference-rows`` rows; current batches of several sizes are drawn with ``--seeds`` seeds each.
Per feature and batch size the table prints the median of each statistic over the seeds and how
many seeds the default thresholds flagged. Exits 0.

    python benchmarks/drift_detection.py [--reference-rows 150000] [--seeds 5] [--sizes 150000,20000,2000,200,10]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np

from airflow_dl_provider.drift import DriftThresholds, build_baseline, check_drift

Draw = Callable[[np.random.Generator, int], np.ndarray]

#: Each distribution with its mean and standard deviation, so shifts are in its own units.
DISTRIBUTIONS: dict[str, tuple[Draw, float, float]] = {
    "normal": (lambda r, n: r.normal(size=n), 0.0, 1.0),
    "uniform": (lambda r, n: r.uniform(size=n), 0.5, (1 / 12) ** 0.5),
    "lognormal": (
        lambda r, n: r.lognormal(0.0, 0.5, size=n),
        float(np.exp(0.125)),
        float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))),
    ),
    "student_t3": (lambda r, n: r.standard_t(3, size=n), 0.0, 3**0.5),
    "poisson3": (lambda r, n: r.poisson(3.0, size=n).astype(float), 3.0, 3**0.5),
    "bimodal": (
        lambda r, n: np.where(r.random(n) < 0.5, r.normal(-2, 1, n), r.normal(2, 1, n)),
        0.0,
        5**0.5,
    ),
}
SHIFTS = ("none", "location_0.15sd", "scale_1.3x")
#: Share of missing values of the last numeric feature: 2% in the reference, 10% in the shifted one.
MISSING = {"none": 0.02, "plus_8pts": 0.10}
CATEGORIES = np.array(["a", "b", "c", "d", "e"])
SHARES = {"none": [0.40, 0.25, 0.15, 0.12, 0.08], "moved_5pts": [0.35, 0.25, 0.15, 0.12, 0.13]}
STATISTICS = (
    "psi",
    "js_distance",
    "ks_statistic",
    "wasserstein_normed",
    "total_variation",
    "missing_rate_change",
    "ks_pvalue",
    "chi2_pvalue",
    "missing_pvalue",
)


def _numeric(rng: np.random.Generator, rows: int, shifted: bool) -> dict[str, np.ndarray]:
    columns = {}
    for name, (draw, mean, sd) in DISTRIBUTIONS.items():
        for shift in SHIFTS:
            values = draw(rng, rows)
            if shifted and shift == "location_0.15sd":
                values = values + 0.15 * sd
            elif shifted and shift == "scale_1.3x":
                values = mean + (values - mean) * 1.3
            columns[f"{name}/{shift}"] = values
    return columns


def data_set(rng: np.random.Generator, rows: int, shifted: bool) -> dict[str, np.ndarray]:
    """The reference (``shifted=False``) or a current batch: every feature, each with its own draw."""
    columns = _numeric(rng, rows, shifted)
    for shift, shares in SHARES.items():
        columns[f"category/{shift}"] = rng.choice(
            CATEGORIES, size=rows, p=shares if shifted else SHARES["none"]
        )
    for shift, rate in MISSING.items():
        values = rng.normal(size=rows)
        values[rng.random(rows) < (rate if shifted else MISSING["none"])] = np.nan
        columns[f"missing/{shift}"] = values
    return columns


def _cell(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    median = float(np.median(present))
    return f"{median:.1e}" if 0 < median < 1e-3 else f"{median:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-rows", type=int, default=150_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", default="150000,20000,2000,200,10")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    thresholds = DriftThresholds()
    profile = build_baseline(
        data_set(np.random.default_rng(12345), args.reference_rows, shifted=False),
        categorical=[f"category/{s}" for s in SHARES],
    )
    features = list(profile.features)
    print(
        f"reference: {args.reference_rows:,} rows, {len(features)} features; default thresholds {thresholds}"
    )
    false_alarms = 0
    for size in sizes:
        scores: dict[str, dict[str, list[float | None]]] = {f: {s: [] for s in STATISTICS} for f in features}
        flagged = dict.fromkeys(features, 0)
        for seed in range(args.seeds):
            result = check_drift(
                profile, data_set(np.random.default_rng(seed), size, shifted=True), thresholds
            )
            for name, feature in result.features.items():
                for statistic in STATISTICS:
                    scores[name][statistic].append(feature.scores.get(statistic))
                flagged[name] += feature.drifted
        print(
            f"\ncurrent batch: {size:,} rows, {args.seeds} seeds (median of each statistic; flagged by the defaults)"
        )
        print(f"{'feature':28s}" + "".join(f"{s:>20s}" for s in STATISTICS) + f"{'flagged':>10s}")
        for name in features:
            cells = "".join(f"{_cell(scores[name][s]):>20s}" for s in STATISTICS)
            print(f"{name:28s}{cells}{flagged[name]:>7d}/{args.seeds}")
            if name.endswith("/none"):
                false_alarms += flagged[name]
    print(f"\nfalse alarms (an unshifted feature flagged) over all sizes and seeds: {false_alarms}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
