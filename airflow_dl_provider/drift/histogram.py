"""Counting values into a baseline's fine bins, and the uniform sample that places those bins.

The baseline build (its second pass) and every drift check count values the same way: sort the
chunk once (numpy's vectorized sort), then look each *edge* up in it. That is two binary searches
per edge instead of one per value, so a chunk costs one sort plus one pass to sum the bins: less
than a single ``searchsorted`` of the values into the edges.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Past this magnitude, sums of many values could overflow a float: bins are summed in units of a
#: power of two at least this large (exact, since it only shifts the exponent).
SCALED_ABOVE = 1e200


def scale_for(magnitude: float, above: float = 1.0) -> float:
    """A power of two within a factor 2 below ``magnitude`` when it exceeds ``above``, else 1.

    Below rather than above, since the power of two above the largest float is not a float.
    """
    if not math.isfinite(magnitude) or magnitude <= above:
        return 1.0
    return math.ldexp(1.0, math.frexp(magnitude)[1] - 1)


def sort_finite(floats: NDArray[np.float64]) -> tuple[NDArray[np.float64], int, int]:
    """The finite values sorted, and how many were NaN (missing) and infinite (invalid).

    numpy sorts NaN last and infinities next to it, so both are counted by binary search.
    """
    ordered = np.sort(floats)
    end = int(np.searchsorted(ordered, np.nan, side="left"))
    lo = int(np.searchsorted(ordered[:end], -np.inf, side="right"))
    hi = int(np.searchsorted(ordered[:end], np.inf, side="left"))
    return ordered[lo:hi], int(ordered.size - end), lo + end - hi


class EdgeCounts:
    """Counts and sums of values per bin of fixed, increasing edges ``e[0] < ... < e[E-1]``.

    Bin 0 holds ``x <= e[0]``, bin ``k`` holds ``e[k-1] < x <= e[k]``, bin ``E`` holds ``x > e[E-1]``:
    ``np.searchsorted(edges, x, side="left")``, computed from the sorted chunk.

    :param scale: sums are kept in units of ``scale`` (a power of two), so that values near the
        float limit do not overflow them.
    :param at_edges: also count the values equal to each edge (the build needs them for the KS
        error bound; a check does not).
    """

    def __init__(self, edges: NDArray[np.float64], scale: float = 1.0, at_edges: bool = False) -> None:
        self.edges = edges
        self.scale = scale
        self.counts = np.zeros(edges.size + 1, dtype=np.int64)
        self.sums = np.zeros(edges.size + 1, dtype=np.float64)
        self.at_edges = np.zeros(edges.size, dtype=np.int64) if at_edges else None

    def add(self, ordered: NDArray[np.float64]) -> None:
        """Count a sorted chunk of finite values (from :func:`sort_finite`)."""
        n = ordered.size
        if n == 0:
            return
        upto = np.searchsorted(ordered, self.edges, side="right")
        if self.at_edges is not None:
            self.at_edges += upto - np.searchsorted(ordered, self.edges, side="left")
        starts = np.concatenate(([0], upto))
        counts = np.diff(np.append(starts, n))
        self.counts += counts
        # reduceat wants start indices inside the array; the starts at n are empty trailing bins.
        inside = int(np.searchsorted(starts, n, side="left"))
        weights = ordered if self.scale == 1.0 else ordered * (1.0 / self.scale)
        sums = np.add.reduceat(weights, starts[:inside])
        sums[counts[:inside] == 0] = 0.0  # reduceat gives the start value for an empty bin
        self.sums[:inside] += sums


class Sample:
    """A uniform sample without replacement of at most ``size`` values from a stream of chunks.

    Every value gets a uniform random key and the sample is the ``size`` values with the smallest
    keys (bottom-k sampling): exactly uniform, mergeable, and per chunk one vectorized filter,
    since once the sample is full only a key below the current largest can enter.
    """

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.keys = np.empty(0, dtype=np.float64)
        self.values = np.empty(0, dtype=np.float64)

    def add(self, values: NDArray[np.float64]) -> None:
        if values.size == 0:
            return
        keys = self.rng.random(values.size)
        if self.keys.size >= self.size:
            enter = keys < self.keys.max()
            keys, values = keys[enter], values[enter]
            if keys.size == 0:
                return
        keys = np.concatenate([self.keys, keys])
        values = np.concatenate([self.values, values])
        if keys.size > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values


def quantile_edges(sample: NDArray[np.float64], low: float, high: float, bins: int) -> NDArray[np.float64]:
    """``bins + 1`` edges at evenly spaced ranks of the sample, the first the minimum, the last the maximum.

    Every edge is a data value. When the sample holds all the data these are its exact quantiles.
    """
    ordered = np.sort(sample)
    ranks = np.unique(np.round(np.linspace(0, ordered.size - 1, bins + 1)).astype(np.int64))
    return np.unique(np.concatenate(([low], ordered[ranks] if ordered.size else [], [high])))
