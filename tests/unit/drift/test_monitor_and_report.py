"""Model Monitor's violations give the same decision; the reports render every feature."""

from __future__ import annotations

import json

import numpy as np
import pytest

from airflow_dl_provider.drift import (
    DriftThresholds,
    build_baseline,
    check_drift,
    parse_constraint_violations,
    report_html,
    report_json,
)
from airflow_dl_provider.exceptions import DriftInputError

VIOLATIONS = {
    "violations": [
        {
            "feature_name": "age",
            "constraint_check_type": "baseline_drift_check",
            "description": "Baseline drift distance: 0.27 exceeds threshold: 0.1",
        },
        {
            "feature_name": "city",
            "constraint_check_type": "categorical_values_check",
            "description": "New values",
        },
        {
            "feature_name": "income",
            "constraint_check_type": "data_type_check",
            "description": "Data type mismatch",
        },
    ]
}


def test_constraint_violations_as_a_drift_result() -> None:
    result = parse_constraint_violations(json.dumps(VIOLATIONS))
    assert result.drifted
    assert result.features_drifted == ["age", "city"]
    assert result.features["age"].scores["baseline_drift_distance"] == 0.27
    assert result.features["age"].scores["baseline_drift_threshold"] == 0.1
    assert not result.features["income"].drifted  # data quality, not drift
    assert not parse_constraint_violations(VIOLATIONS, DriftThresholds(min_features_drifted=3)).drifted
    strict = parse_constraint_violations(VIOLATIONS, drift_checks=("baseline_drift_check", "data_type_check"))
    assert strict.features_drifted == ["age", "income"]
    assert not parse_constraint_violations({"violations": []}).drifted


def test_constraint_violations_bad_file() -> None:
    with pytest.raises(DriftInputError, match="has no 'violations' list"):
        parse_constraint_violations({"checks": []})
    with pytest.raises(DriftInputError, match="unknown check type"):
        parse_constraint_violations(VIOLATIONS, drift_checks=("vibes_check",))


def test_reports_hold_every_feature() -> None:
    rng = np.random.default_rng(0)
    ref = {"x": rng.normal(size=4000), "color": rng.choice(["a", "b"], size=4000)}
    cur = {"x": rng.normal(1, 1, size=1000), "color": rng.choice(["a", "b", "<c>"], size=1000)}
    result = check_drift(build_baseline(ref, model_version="v7"), cur)

    body = json.loads(report_json(result, {"data_uri": "s3://b/k"}))
    assert body["features_drifted"] == result.features_drifted
    assert body["data_uri"] == "s3://b/k"
    assert len(body["features"]["x"]["chart"]["reference"]) == 10

    page = report_html(result, extra={"data_uri": "s3://b/k"})
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert page.count("<svg width='360'") == 2
    assert "&lt;c&gt;" in page and "<c>" not in page  # values are escaped
    assert "v7" in page
