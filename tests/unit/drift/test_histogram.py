"""Counting a sorted chunk into fixed edges is np.searchsorted's binning, exactly; the sample is uniform."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_dl_provider.drift.histogram import EdgeCounts, Sample, quantile_edges, scale_for, sort_finite


@pytest.mark.parametrize("kind", ["normal", "t2", "lognormal", "ties", "constant"])
def test_edge_counts_equal_searchsorted_binning(kind: str) -> None:
    rng = np.random.default_rng(4)
    draw = {
        "normal": lambda n: rng.normal(size=n),
        "t2": lambda n: rng.standard_t(2, size=n),
        "lognormal": lambda n: rng.lognormal(0, 2, size=n),
        "ties": lambda n: rng.integers(0, 7, size=n).astype(float),
        "constant": lambda n: np.full(n, 3.0),
    }[kind]
    edges = quantile_edges(draw(20_000), -50.0, 1e6, 200) if kind != "constant" else np.array([3.0])
    values = np.concatenate([draw(20_000) * 1.3 + 0.1, edges, [-1e300, 1e300, edges[0] - 1e-9]])
    counts = EdgeCounts(edges, at_edges=True)
    for part in np.array_split(values, 7):
        counts.add(np.sort(part))

    index = np.searchsorted(edges, values, side="left")
    assert np.array_equal(counts.counts, np.bincount(index, minlength=edges.size + 1))
    assert np.allclose(counts.sums, np.bincount(index, weights=values, minlength=edges.size + 1))
    assert counts.at_edges is not None
    assert np.array_equal(counts.at_edges, [(values == e).sum() for e in edges])


def test_sums_near_the_float_limit_stay_finite() -> None:
    values = np.full(1_000, 1.5e308)
    scale = scale_for(1.5e308, 1e200)
    counts = EdgeCounts(np.array([1e308, 1.6e308]), scale=scale)
    counts.add(values)
    assert np.isfinite(counts.sums).all()
    assert counts.sums[1] / 1_000 * scale == pytest.approx(1.5e308)  # the bin mean, back in units
    assert scale_for(5.0, 1e200) == 1.0


def test_sort_finite_counts_missing_and_infinite() -> None:
    ordered, nan, infinite = sort_finite(np.array([3.0, np.nan, -np.inf, 1.0, np.inf, np.nan]))
    assert ordered.tolist() == [1.0, 3.0]
    assert (nan, infinite) == (2, 2)


def test_sample_is_bounded_and_uniform() -> None:
    rng = np.random.default_rng(0)
    sample = Sample(2_000, rng)
    for start in range(0, 200_000, 10_000):
        sample.add(np.arange(start, start + 10_000, dtype=float))
    assert sample.values.size == 2_000
    assert len(np.unique(sample.values)) == 2_000  # without replacement
    # Each tenth of the stream holds about a tenth of the sample (binomial sd ~ 13).
    per_tenth = np.bincount((sample.values // 20_000).astype(int), minlength=10)
    assert np.all(np.abs(per_tenth - 200) < 70), per_tenth
