"""Hyperparameter search for local tuning jobs: the space, and how each strategy picks the next trial.

Pure functions of the request's ``ParameterRanges`` and the results so far; the tuning worker runs the
trials. Every dimension maps to the unit interval (through its scaling), so the strategies work in
one normalised space:

* ``Random``: seeded uniform draws in that space (so log-uniform for ``Logarithmic``), uniform
  categories. The same ``RandomSeed`` gives the same trials.
* ``Grid``: every combination of the categorical values, first range slowest, in request order;
  SageMaker allows only categorical ranges with Grid, and so does this.
* ``Bayesian``: a seeded Latin-hypercube design of a few trials, then scikit-learn's
  ``GaussianProcessRegressor`` (constant x Matern 5/2 kernel, its hyperparameters fitted by marginal
  likelihood) with expected improvement, maximised over seeded random candidates and perturbations
  of the best point. Trials still running count at the mean observed value ("constant liar"), so
  parallel proposals spread out. This is our optimiser, not SageMaker's; the job log says so.
* ``Hyperband``: run as ``Random`` with every trial at full budget (no successive halving locally).

numpy, scikit-learn and scipy are imported inside the Bayesian code only: the ``local`` extra
provides them.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

# Design points before the Gaussian process has enough of them to say anything.
MIN_INITIAL_TRIALS = 3
_CANDIDATES = 2048
_LOCAL_CANDIDATES = 256
# With a handful of points the marginal likelihood favours ever shorter length scales (a model that
# says nothing between the points); a twentieth of the unit interval is the shortest we believe.
_SHORTEST_LENGTH = 0.05
# A little jitter on the kernel's diagonal: repeated or nearly repeated points stay invertible.
_NOISE = 1e-6


class SearchSpaceError(ValueError):
    """The ranges cannot be searched (a SageMaker ``ValidationException`` on AWS)."""


@dataclass(frozen=True)
class Dimension:
    """One tuned hyperparameter: ``integer``/``continuous`` with bounds and scaling, or ``categorical``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"
    values: tuple[str, ...] = ()

    def _warp(self, x: float) -> float:
        if self.scaling == "Logarithmic":
            return math.log(x)
        if self.scaling == "ReverseLogarithmic":
            return -math.log(1.0 - x)
        return x

    def _unwarp(self, t: float) -> float:
        if self.scaling == "Logarithmic":
            return math.exp(t)
        if self.scaling == "ReverseLogarithmic":
            return 1.0 - math.exp(-t)
        return t

    def to_unit(self, value: str) -> float:
        """Position of a numeric value in [0, 1] after scaling."""
        lo, hi = self._warp(self.low), self._warp(self.high)
        return 0.0 if hi == lo else (self._warp(float(value)) - lo) / (hi - lo)

    def from_unit(self, u: float) -> str:
        """The hyperparameter value (as SageMaker passes it: a string) at ``u`` in [0, 1]."""
        u = min(1.0, max(0.0, u))
        lo, hi = self._warp(self.low), self._warp(self.high)
        x = self._unwarp(lo + u * (hi - lo))
        if self.kind == "integer":
            return str(int(min(self.high, max(self.low, round(x)))))
        return repr(float(min(self.high, max(self.low, x))))


@dataclass
class SearchSpace:
    dimensions: list[Dimension] = field(default_factory=list)

    @classmethod
    def from_ranges(cls, ranges: Mapping[str, Any] | None) -> SearchSpace:
        """The space of a request's ``ParameterRanges``, in request order."""
        ranges = ranges or {}
        dims: list[Dimension] = []
        for kind, key in (("integer", "IntegerParameterRanges"), ("continuous", "ContinuousParameterRanges")):
            for r in ranges.get(key) or []:
                scaling = r.get("ScalingType", "Auto")
                low, high = float(r["MinValue"]), float(r["MaxValue"])
                if low > high:
                    raise SearchSpaceError(f"{r['Name']}: MinValue {low} is above MaxValue {high}")
                if scaling == "Logarithmic" and low <= 0:
                    raise SearchSpaceError(f"{r['Name']}: Logarithmic scaling needs MinValue > 0")
                if scaling == "ReverseLogarithmic" and not (low >= 0 and high < 1):
                    raise SearchSpaceError(
                        f"{r['Name']}: ReverseLogarithmic needs 0 <= MinValue, MaxValue < 1"
                    )
                # Auto: SageMaker picks a scale from the data; the local backend searches linearly.
                dims.append(Dimension(r["Name"], kind, low, high, "Linear" if scaling == "Auto" else scaling))
        for r in ranges.get("CategoricalParameterRanges") or []:
            dims.append(Dimension(r["Name"], "categorical", values=tuple(r["Values"])))
        names = [d.name for d in dims]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SearchSpaceError(f"hyperparameter(s) {duplicates} appear in more than one range")
        return cls(dims)

    @property
    def width(self) -> int:
        """Coordinates of the encoding: one per numeric dimension, one per category."""
        return sum(len(d.values) if d.kind == "categorical" else 1 for d in self.dimensions)

    def encode(self, hps: Mapping[str, str]) -> list[float]:
        out: list[float] = []
        for d in self.dimensions:
            if d.kind == "categorical":
                out.extend(1.0 if hps[d.name] == v else 0.0 for v in d.values)
            else:
                out.append(d.to_unit(hps[d.name]))
        return out

    def contains(self, hps: Mapping[str, str]) -> bool:
        """Whether a (parent job's) trial lies in this space: same names, values in range."""
        try:
            for d in self.dimensions:
                if d.kind == "categorical":
                    if hps[d.name] not in d.values:
                        return False
                elif not d.low <= float(hps[d.name]) <= d.high:
                    return False
        except (KeyError, ValueError):
            return False
        return True

    def latin_hypercube(self, n: int, rng: random.Random) -> list[dict[str, str]]:
        """``n`` points, one in each of ``n`` equal slices of every numeric dimension; categories cycle."""
        columns: dict[str, list[str]] = {}
        for d in self.dimensions:
            if d.kind == "categorical":
                values = list(d.values)
                rng.shuffle(values)
                columns[d.name] = [values[i % len(values)] for i in range(n)]
            else:
                strata = list(range(n))
                rng.shuffle(strata)
                columns[d.name] = [d.from_unit((s + rng.random()) / n) for s in strata]
        return [{name: column[i] for name, column in columns.items()} for i in range(n)]

    def sample(self, rng: random.Random) -> dict[str, str]:
        return {
            d.name: rng.choice(d.values) if d.kind == "categorical" else d.from_unit(rng.random())
            for d in self.dimensions
        }

    def grid(self) -> list[dict[str, str]]:
        """Every combination of the categorical values; SageMaker's Grid takes nothing else."""
        numeric = [d.name for d in self.dimensions if d.kind != "categorical"]
        if numeric:
            raise SearchSpaceError(
                f"Grid search takes categorical ranges only; {', '.join(numeric)} is integer or continuous"
            )
        names = [d.name for d in self.dimensions]
        return [
            dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(d.values for d in self.dimensions))
        ]


@dataclass
class Observation:
    hyperparameters: dict[str, str]
    value: float


@dataclass
class Proposal:
    hyperparameters: dict[str, str]
    how: str
    expected_improvement: float | None = None


class Searcher:
    """Proposes trials one at a time from what has finished and what is still running.

    :param strategy: ``Bayesian``, ``Random``, ``Grid`` or ``Hyperband``.
    :param maximize: whether a larger objective is better.
    :param seed: ``RandomSeed``; the same seed gives the same trials for the same results.
    :param prior: finished trials of warm-start parent jobs (Bayesian uses them as observations).
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: str,
        *,
        maximize: bool = True,
        seed: int = 0,
        prior: Sequence[Observation] = (),
    ) -> None:
        self.space = space
        self.strategy = strategy
        self.maximize = maximize
        self.seed = seed
        self.rng = random.Random(seed)
        self.prior = [o for o in prior if space.contains(o.hyperparameters)]
        self._grid: Iterator[dict[str, str]] | None = iter(space.grid()) if strategy == "Grid" else None
        # Bayesian starts from a space-filling design, so the model's first fit sees every region.
        self._initial = space.latin_hypercube(MIN_INITIAL_TRIALS, self.rng) if strategy == "Bayesian" else []

    def describe(self) -> str:
        if self.strategy == "Bayesian":
            return (
                "Bayesian: local Gaussian-process optimiser (scikit-learn, Matern 5/2, expected improvement, "
                f"a {MIN_INITIAL_TRIALS}-point seeded Latin hypercube first, constant liar for running trials); "
                f"not SageMaker's own; {len(self.prior)} warm-start observation(s)"
            )
        if self.strategy == "Hyperband":
            return "Hyperband: run locally as Random search, every trial to its full budget (no successive halving)"
        if self.strategy == "Grid":
            return "Grid: every combination of the categorical values, in request order"
        return f"Random: seeded uniform draws (RandomSeed={self.seed}), log-uniform for Logarithmic ranges"

    def propose(
        self, finished: Sequence[Observation], pending: Sequence[Mapping[str, str]]
    ) -> Proposal | None:
        """The next trial's hyperparameters; None when a Grid is exhausted."""
        if self._grid is not None:
            combo = next(self._grid, None)
            return None if combo is None else Proposal(combo, "grid")
        observed = [*self.prior, *finished]
        if self.strategy != "Bayesian" or not self.space.dimensions:
            return Proposal(self.space.sample(self.rng), "random")
        if self._initial and len(observed) < MIN_INITIAL_TRIALS:
            return Proposal(self._initial.pop(0), "initial design")
        if len(observed) < 2:  # the design is out but still running: too little to fit a model to
            return Proposal(self.space.sample(self.rng), "random")
        return self._bayesian(observed, pending)

    def _bayesian(self, observed: Sequence[Observation], pending: Sequence[Mapping[str, str]]) -> Proposal:
        import numpy as np

        sign = 1.0 if self.maximize else -1.0
        x = np.array([self.space.encode(o.hyperparameters) for o in observed], dtype=float)
        y = np.array([sign * o.value for o in observed], dtype=float)
        if pending:
            # Constant liar: a running trial "scores" the mean, so the next proposal looks elsewhere.
            x = np.vstack([x, np.array([self.space.encode(p) for p in pending], dtype=float)])
            y = np.concatenate([y, np.full(len(pending), y.mean())])
        # Standardised, so the expected improvement is in standard deviations of the objective:
        # the unit of the tuning runner's convergence threshold.
        z = (y - y.mean()) / (y.std() or 1.0)
        candidates = self._candidates(observed, sign)
        encoded = np.array([self.space.encode(c) for c in candidates], dtype=float)
        improvement = _expected_improvement(
            x, z, encoded, float(z[: len(observed)].max()), seed=self.seed + len(observed)
        )
        seen = {tuple(sorted(o.hyperparameters.items())) for o in observed}
        seen |= {tuple(sorted(p.items())) for p in pending}
        for index in np.argsort(-improvement):
            choice = candidates[int(index)]
            if tuple(sorted(choice.items())) not in seen:
                return Proposal(choice, "bayesian", float(improvement[int(index)]))
        return Proposal(self.space.sample(self.rng), "random (every candidate already tried)")

    def _candidates(self, observed: Sequence[Observation], sign: float) -> list[dict[str, str]]:
        # A fresh generator per proposal, derived from the seed and the history: reproducible.
        rng = random.Random(self.seed * 1_000_003 + len(observed))
        best = max(observed, key=lambda o: sign * o.value).hyperparameters
        out = [self.space.sample(rng) for _ in range(_CANDIDATES)]
        for _ in range(_LOCAL_CANDIDATES):
            near: dict[str, str] = {}
            for d in self.space.dimensions:
                if d.kind == "categorical":
                    near[d.name] = best[d.name] if rng.random() < 0.8 else rng.choice(d.values)
                else:
                    near[d.name] = d.from_unit(d.to_unit(best[d.name]) + rng.gauss(0.0, 0.05))
            out.append(near)
        return out


def _expected_improvement(x: Any, z: Any, candidates: Any, best: float, *, seed: int) -> Any:
    """Expected improvement over ``best`` at each candidate, under a Gaussian process fitted to (x, z).

    :param z: standardised objective values (larger is better), so the prior mean 0 is their mean.
    """
    import warnings

    import numpy as np
    from scipy.special import ndtr
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern

    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        length_scale=0.2, length_scale_bounds=(_SHORTEST_LENGTH, 10.0), nu=2.5
    )
    gp = GaussianProcessRegressor(
        kernel, alpha=_NOISE, normalize_y=False, n_restarts_optimizer=2, random_state=seed
    )
    with warnings.catch_warnings():
        # A few points often put the fitted length scale at a bound; the fit is still usable.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, z)
    mean, sd = gp.predict(candidates, return_std=True)
    sd = np.maximum(sd, 1e-12)
    gap = mean - best
    u = gap / sd
    return gap * ndtr(u) + sd * np.exp(-0.5 * u**2) / np.sqrt(2.0 * np.pi)
