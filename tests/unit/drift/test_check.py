"""The streaming check against the exact statistics on synthetic shifts, and the one decision."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from airflow_dl_provider.drift import DriftThresholds, build_baseline, check_drift
from airflow_dl_provider.drift.check import DriftCheck

FEATURES = ("mean_shift", "scale", "mixture", "heavy_tail", "uniform", "stable")


def _reference(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "mean_shift": rng.normal(size=n),
        "scale": rng.normal(size=n),
        "mixture": rng.normal(size=n),
        "heavy_tail": rng.standard_t(2, size=n),
        "uniform": rng.uniform(0, 10, size=n),
        "stable": rng.gamma(2.0, size=n),
    }


def _shifted(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    mix = rng.random(m) < 0.25
    return {
        "mean_shift": rng.normal(0.4, 1.0, size=m),
        "scale": rng.normal(0.0, 1.6, size=m),
        "mixture": np.where(mix, rng.normal(3.0, 0.5, size=m), rng.normal(size=m)),
        "heavy_tail": rng.standard_t(2, size=m) * 1.5 + 0.3,
        "uniform": rng.uniform(1, 11, size=m),
        "stable": rng.gamma(2.0, size=m),
    }


def _chunks(data: dict[str, np.ndarray], rows: int) -> Any:
    size = len(next(iter(data.values())))
    for start in range(0, size, rows):
        yield {k: v[start : start + rows] for k, v in data.items()}


@pytest.mark.parametrize(("n", "m", "seed"), [(20_000, 5_000, 0), (100_000, 40_000, 1), (3_000, 800, 2)])
def test_ks_within_0005_of_scipy_and_psi_matches_direct(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = _reference(rng, n), _shifted(rng, m)
    profile = build_baseline(ref)

    result = check_drift(profile, _chunks(cur, 1_000))

    for name in FEATURES:
        scores = result.features[name].scores
        exact = stats.ks_2samp(ref[name], cur[name]).statistic
        assert abs(scores["ks_statistic"] - exact) <= 0.005, name
        # The documented bound: the edge statistic is below the exact one by at most ks_error_bound.
        assert (
            exact - profile.features[name].ks_error_bound - 1e-12 <= scores["ks_statistic"] <= exact + 1e-12
        )
        # PSI over the reference's deciles, computed directly from the raw samples.
        deciles = np.quantile(ref[name], np.linspace(0, 1, 11))[1:-1]
        p = np.bincount(np.searchsorted(deciles, ref[name], side="left"), minlength=10) / n
        q = np.bincount(np.searchsorted(deciles, cur[name], side="left"), minlength=10) / m
        p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        assert scores["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=0.05, abs=0.003), (
            name
        )
        expected_w = stats.wasserstein_distance(ref[name], cur[name])
        assert scores["wasserstein"] == pytest.approx(expected_w, rel=0.08, abs=0.01), name


def test_flags_the_same_features_as_scipy_at_the_same_threshold() -> None:
    rng = np.random.default_rng(7)
    ref, cur = _reference(rng, 50_000), _shifted(rng, 10_000)
    # The KS rule alone, at a per-feature level of 0.05 (the check divides ks_pvalue by the features).
    thresholds = DriftThresholds(
        psi=None,
        js_distance=None,
        wasserstein_normed=None,
        missing_rate=None,
        ks_statistic=0.08,
        ks_pvalue=0.05 * len(FEATURES),
    )

    result = check_drift(build_baseline(ref), cur, thresholds)

    expected = [
        name
        for name in FEATURES
        if (r := stats.ks_2samp(ref[name], cur[name])).statistic >= 0.08 and r.pvalue < 0.05
    ]
    assert result.features_drifted == expected
    assert "stable" not in expected and "mean_shift" in expected
    assert result.drifted


@pytest.mark.parametrize("seed", range(8))
def test_no_feature_flagged_on_one_distribution(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n, m = int(rng.integers(2_000, 60_000)), int(rng.integers(500, 30_000))
    ref, cur = _reference(rng, n), _reference(rng, m)
    ref["color"] = rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2])
    cur["color"] = rng.choice(["red", "green", "blue"], size=m, p=[0.5, 0.3, 0.2])

    result = check_drift(build_baseline(ref), _chunks(cur, 4_096))

    assert result.features_drifted == [], result.summary()
    assert not result.drifted


def test_categorical_scores_and_new_values() -> None:
    rng = np.random.default_rng(5)
    ref = {"color": rng.choice(["red", "green", "blue"], size=10_000, p=[0.5, 0.3, 0.2])}
    cur = {"color": rng.choice(["red", "green", "blue", "mauve"], size=4_000, p=[0.3, 0.3, 0.2, 0.2])}

    feature = check_drift(build_baseline(ref), cur).features["color"]

    assert feature.kind == "categorical"
    assert feature.drifted
    assert feature.scores["new_values"] == pytest.approx(np.mean(cur["color"] == "mauve"))
    table = [
        [np.sum(ref["color"] == c) for c in ("blue", "green", "red", "mauve")],
        [np.sum(cur["color"] == c) for c in ("blue", "green", "red", "mauve")],
    ]
    assert feature.scores["chi2_statistic"] == pytest.approx(
        stats.chi2_contingency(table, correction=False)[0]
    )


def test_min_features_drifted_decides() -> None:
    rng = np.random.default_rng(9)
    ref, cur = _reference(rng, 20_000), _shifted(rng, 5_000)
    result = check_drift(build_baseline(ref), cur, DriftThresholds(min_features_drifted=6))
    assert 0 < len(result.features_drifted) < 6
    assert not result.drifted


def test_missing_values_are_counted_not_binned() -> None:
    ref = {"x": np.arange(1000, dtype=float)}
    cur = {"x": np.array(["1", "", "NA", "3.5", "null", "7"])}
    feature = check_drift(build_baseline(ref), cur).features["x"]
    assert (feature.rows, feature.missing, feature.invalid) == (6, 3, 0)


def test_summary_is_small_and_json_safe() -> None:
    import json

    rng = np.random.default_rng(11)
    ref, cur = _reference(rng, 5_000), _shifted(rng, 2_000)
    summary = check_drift(build_baseline(ref, model_version="v3"), cur).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["model_version"] == "v3"
    assert summary["rows"] == 2_000
    assert len(json.dumps(summary)) < 4_000


def test_check_memory_is_bins_not_rows() -> None:
    rng = np.random.default_rng(12)
    profile = build_baseline({"x": rng.normal(size=10_000)})
    check = DriftCheck(profile)
    for _ in range(20):
        check.update({"x": rng.normal(size=5_000)})
    counts = check.counts["x"]
    assert counts.bins.counts.size == profile.features["x"].edges.size + 1  # type: ignore[union-attr]
    assert check.rows == 100_000
