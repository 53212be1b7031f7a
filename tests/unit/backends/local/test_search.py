"""The local tuning strategies, as pure functions: what Random, Grid and Bayesian propose."""

from __future__ import annotations

import math
import random

import pytest

from airflow_dl_provider.backends.local.search import (
    Observation,
    Searcher,
    SearchSpace,
    SearchSpaceError,
)

MIXED = {
    "IntegerParameterRanges": [
        {"Name": "hidden", "MinValue": "32", "MaxValue": "256", "ScalingType": "Auto"}
    ],
    "ContinuousParameterRanges": [
        {"Name": "lr", "MinValue": "0.0001", "MaxValue": "1.0", "ScalingType": "Logarithmic"},
        {"Name": "momentum", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
    ],
    "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ['"sgd"', '"adam"']}],
}


def _run(searcher: Searcher, objective, budget: int) -> list[Observation]:
    observed: list[Observation] = []
    for _ in range(budget):
        proposal = searcher.propose(observed, [])
        assert proposal is not None
        observed.append(Observation(proposal.hyperparameters, objective(proposal.hyperparameters)))
    return observed


def test_random_is_reproducible_per_seed_and_stays_in_range() -> None:
    space = SearchSpace.from_ranges(MIXED)

    def five(seed: int) -> list[dict[str, str]]:
        return [o.hyperparameters for o in _run(Searcher(space, "Random", seed=seed), lambda _h: 0.0, 5)]

    assert five(1) == five(1)
    assert five(1) != five(2)
    searcher = Searcher(space, "Random", seed=7)
    hps = [searcher.propose([], []).hyperparameters for _ in range(400)]  # type: ignore[union-attr]
    assert all(32 <= int(h["hidden"]) <= 256 and h["hidden"].isdigit() for h in hps)
    assert all(0.5 <= float(h["momentum"]) <= 0.999 for h in hps)
    assert {h["optimizer"] for h in hps} == {'"sgd"', '"adam"'}
    # Logarithmic: uniform in log10 space, so about a quarter of the draws fall in each decade.
    below = sum(float(h["lr"]) < 1e-3 for h in hps) / len(hps)
    assert 0.15 < below < 0.35


def test_random_draws_are_pinned_per_seed() -> None:
    # The exact draws of seed 5: a retried tuning job, or a new release, proposes the same trials.
    searcher = Searcher(SearchSpace.from_ranges(MIXED), "Random", seed=5)
    first = [searcher.propose([], []).hyperparameters for _ in range(3)]  # type: ignore[union-attr]
    assert first == [
        {
            "hidden": "172",
            "lr": "0.09271456329681652",
            "momentum": "0.9964291926237147",
            "optimizer": '"sgd"',
        },
        {"hidden": "220", "lr": "0.1270089336442293", "momentum": "0.8936385238456495", "optimizer": '"sgd"'},
        {
            "hidden": "234",
            "lr": "0.0002836768257110567",
            "momentum": "0.9729001607710775",
            "optimizer": '"sgd"',
        },
    ]


def test_bayesian_is_reproducible_per_seed() -> None:
    space = SearchSpace.from_ranges(MIXED)

    def trials(seed: int) -> list[tuple[str, dict[str, str]]]:
        searcher, observed, out = Searcher(space, "Bayesian", seed=seed), [], []
        for _ in range(6):
            proposal = searcher.propose(observed, [])
            assert proposal is not None
            out.append((proposal.how, proposal.hyperparameters))
            observed.append(
                Observation(proposal.hyperparameters, -abs(float(proposal.hyperparameters["lr"]) - 0.01))
            )
        return out

    first = trials(3)
    assert [how for how, _ in first] == ["initial design"] * 3 + ["bayesian"] * 3
    assert first == trials(3)
    assert "scikit-learn" in Searcher(space, "Bayesian").describe()


def test_grid_is_every_categorical_combination_in_request_order() -> None:
    space = SearchSpace.from_ranges(
        {
            "CategoricalParameterRanges": [
                {"Name": "a", "Values": ["1", "2"]},
                {"Name": "b", "Values": ["x", "y", "z"]},
            ]
        }
    )
    searcher = Searcher(space, "Grid")
    proposals = []
    while (proposal := searcher.propose([], [])) is not None:
        proposals.append(proposal.hyperparameters)
    assert proposals == [{"a": a, "b": b} for a in ("1", "2") for b in ("x", "y", "z")]


def test_grid_refuses_numeric_ranges() -> None:
    with pytest.raises(SearchSpaceError, match="categorical ranges only; hidden, lr, momentum"):
        Searcher(SearchSpace.from_ranges(MIXED), "Grid")


def test_bayesian_converges_on_a_smooth_function_and_beats_random() -> None:
    space = SearchSpace.from_ranges(MIXED)

    def objective(h: dict[str, str]) -> float:
        return (
            -((math.log10(float(h["lr"])) + 2) ** 2)
            - ((int(h["hidden"]) - 128) / 64) ** 2
            - (0.5 if h["optimizer"] == '"sgd"' else 0.0)
        )

    for seed in range(4):
        bayes = max(o.value for o in _run(Searcher(space, "Bayesian", seed=seed), objective, 15))
        random_ = max(o.value for o in _run(Searcher(space, "Random", seed=seed), objective, 15))
        assert bayes > random_, seed
        assert bayes > -0.6, seed  # the optimum is 0; the wrong optimizer alone costs 0.5


def test_minimize_and_pending_trials_spread_the_proposals() -> None:
    space = SearchSpace.from_ranges(
        {
            "ContinuousParameterRanges": [
                {"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}
            ]
        }
    )
    searcher = Searcher(space, "Bayesian", seed=0, maximize=False)
    observed = [Observation({"x": repr(x)}, (x - 0.7) ** 2) for x in (0.1, 0.5, 0.9)]
    first = searcher.propose(observed, [])
    assert first is not None and first.how == "bayesian"
    assert abs(float(first.hyperparameters["x"]) - 0.7) < 0.2
    second = searcher.propose(observed, [first.hyperparameters])
    assert second is not None and second.hyperparameters != first.hyperparameters


def test_warm_start_uses_only_observations_inside_the_space() -> None:
    space = SearchSpace.from_ranges(MIXED)
    inside = Observation({"hidden": "64", "lr": "0.01", "momentum": "0.9", "optimizer": '"adam"'}, 0.8)
    outside = Observation({"hidden": "999", "lr": "0.01", "momentum": "0.9", "optimizer": '"adam"'}, 0.9)
    other_names = Observation({"depth": "3"}, 0.7)
    searcher = Searcher(space, "Bayesian", prior=[inside, outside, other_names])
    assert searcher.prior == [inside]
    assert "1 warm-start observation(s)" in searcher.describe()


def test_scalings_round_trip() -> None:
    space = SearchSpace.from_ranges(MIXED)
    for dim in space.dimensions:
        if dim.kind == "continuous":
            for u in (0.0, 0.25, 0.5, 1.0):
                assert dim.to_unit(dim.from_unit(u)) == pytest.approx(u, abs=1e-9)
    with pytest.raises(SearchSpaceError, match="Logarithmic scaling needs MinValue > 0"):
        SearchSpace.from_ranges(
            {
                "ContinuousParameterRanges": [
                    {"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
                ]
            }
        )


def test_expected_improvement_is_in_standard_deviations_of_the_objective() -> None:
    # The tuning runner's convergence threshold is in those units: rescaling the metric changes nothing.
    space = SearchSpace.from_ranges(MIXED)
    base = [
        Observation(h, -abs(math.log10(float(h["lr"])) + 2))
        for h in space.latin_hypercube(5, random.Random(1))
    ]
    scaled = [Observation(o.hyperparameters, 1000.0 * o.value + 5.0) for o in base]
    a = Searcher(space, "Bayesian", seed=2).propose(base, [])
    b = Searcher(space, "Bayesian", seed=2).propose(scaled, [])
    assert a is not None and b is not None and a.how == b.how == "bayesian"
    assert a.hyperparameters == b.hyperparameters
    assert a.expected_improvement == pytest.approx(b.expected_improvement, rel=1e-3)
    assert 0.0 < float(a.expected_improvement or 0.0) < 5.0
