"""Each bad input is one line that names what is wrong."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from pathlib import Path

from airflow_dl_provider.drift import (
    DriftThresholds,
    build_baseline,
    check_drift,
    load_baseline,
    save_baseline,
)
from airflow_dl_provider.exceptions import DriftInputError


@pytest.fixture
def profile():
    rng = np.random.default_rng(0)
    return build_baseline({"a": rng.normal(size=2_000), "b": rng.normal(size=2_000)}, model_version="v1")


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_data_column_the_baseline_lacks(profile) -> None:
    with pytest.raises(DriftInputError) as err:
        check_drift(profile, {"a": [1.0], "b": [2.0], "c": [3.0]})
    assert "has column(s) ['c'] that the baseline lacks" in _one_line(err)


def test_data_with_none_of_the_features(profile) -> None:
    with pytest.raises(DriftInputError) as err:
        check_drift(profile, {}, features=["a"])
    assert "is empty" in _one_line(err)
    with pytest.raises(DriftInputError) as err:
        check_drift(profile, {"z": [1.0, 2.0]}, features=["a", "b"])
    assert "has none of the baseline's features ['a', 'b']" in _one_line(err)


def test_subset_of_features_is_allowed(profile) -> None:
    result = check_drift(profile, {"a": [0.1, 0.2], "c": ["x", "y"]}, features=["a"])
    assert list(result.features) == ["a"]
    with pytest.raises(DriftInputError) as err:
        check_drift(profile, {"a": [0.1]}, features=["z"])
    assert "['z'] are not in the baseline" in _one_line(err)


def test_non_numeric_values_beyond_tolerance(profile) -> None:
    values = ["0.5"] * 95 + ["abc"] * 5
    with pytest.raises(DriftInputError) as err:
        check_drift(profile, {"a": values, "b": ["1"] * 100})
    message = _one_line(err)
    assert "numeric column 'a' has 5.0% non-numeric values (e.g. 'abc')" in message
    # Within the tolerated fraction the bad values are counted and ignored.
    feature = check_drift(
        profile, {"a": values, "b": ["1"] * 100}, DriftThresholds(max_invalid_fraction=0.1)
    ).features["a"]
    assert feature.invalid == 5


def test_empty_data_set(profile) -> None:
    with pytest.raises(DriftInputError) as err:
        check_drift(profile, iter([]))
    assert "is empty" in _one_line(err)


def test_baseline_of_another_version(profile, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(profile, None, str(path))
    assert load_baseline(None, str(path)).model_version == "v1"
    data = json.loads(path.read_text())
    data["format_version"] = "airflow-dl-drift-baseline/0"
    path.write_text(json.dumps(data))
    with pytest.raises(DriftInputError) as err:
        load_baseline(None, str(path))
    assert (
        "is format 'airflow-dl-drift-baseline/0', this provider reads 'airflow-dl-drift-baseline/2'"
        in _one_line(err)
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"psi": -0.1}, "thresholds.psi: must be in (0, inf), got -0.1"),
        ({"ks_pvalue": 1.5}, "thresholds.ks_pvalue: must be in (0, 1), got 1.5"),
        ({"ks_statistic": 0}, "thresholds.ks_statistic: must be in (0, 1], got 0"),
        ({"js_distance": 2}, "thresholds.js_distance: must be in (0, 1], got 2"),
        ({"chi2_pvalue": "0.05"}, "thresholds.chi2_pvalue: must be a number, got '0.05'"),
        ({"min_features_drifted": 0}, "thresholds.min_features_drifted: must be >= 1, got 0"),
        ({"min_rows": 2.5}, "thresholds.min_rows: must be an integer, got 2.5"),
        ({"wasserstein_normed": 0}, "thresholds.wasserstein_normed: must be in (0, inf), got 0"),
        ({"missing_rate": 1.5}, "thresholds.missing_rate: must be in (0, 1], got 1.5"),
        ({"max_invalid_fraction": 1}, "thresholds.max_invalid_fraction: must be in [0, 1), got 1"),
    ],
)
def test_thresholds_out_of_range(kwargs: dict, expected: str) -> None:
    with pytest.raises(DriftInputError) as err:
        DriftThresholds(**kwargs)
    assert _one_line(err) == expected


def test_unknown_threshold_key() -> None:
    with pytest.raises(DriftInputError) as err:
        DriftThresholds.from_mapping({"psi_limit": 0.1})
    assert _one_line(err).startswith("thresholds: unknown key(s) ['psi_limit']")
