"""The drift report ranks features worst first, summary table before the charts, f2 before f10."""

from __future__ import annotations

import re

import numpy as np

from airflow_dl_provider.drift import build_baseline, check_drift, report_html
from airflow_dl_provider.drift.severity import natural_key, ranked


def test_natural_key_orders_digit_runs_as_numbers() -> None:
    names = ["f10", "f2", "f1", "g", "f2b", "f02x"]
    assert sorted(names, key=natural_key) == ["f1", "f2", "f2b", "f02x", "f10", "g"]


def test_ranked_puts_drifted_first_then_severity_then_natural_name() -> None:
    thresholds = {"psi": 0.2, "ks_statistic": 0.05}
    features = {
        "f10": {"drifted": False, "scores": {"psi": 0.01}},
        "f2": {"drifted": False, "scores": {"psi": 0.01}},
        "f3": {"drifted": True, "scores": {"psi": 0.4}},  # 2x its threshold
        "f1": {"drifted": True, "scores": {"ks_statistic": 0.5}},  # 10x
        "gone": {"drifted": True, "scores": {}},  # nothing to compare: the most severe
    }

    order = ranked(features, thresholds)

    assert [name for name, _ in order] == ["gone", "f1", "f3", "f2", "f10"]
    assert [round(v, 6) for _, v in order[1:]] == [10.0, 2.0, 0.05, 0.05]


def test_report_summary_comes_first_and_sections_follow_its_order() -> None:
    rng = np.random.default_rng(0)
    # f1 drifts a little, f10 a lot, the rest not at all: severity, not name, decides the order.
    reference = {f"f{i}": rng.normal(size=3000) for i in (1, 2, 10, 11)}
    current = {
        "f1": rng.normal(0.3, 1, size=3000),
        "f2": rng.normal(size=3000),
        "f10": rng.normal(2.0, 1, size=3000),
        "f11": rng.normal(size=3000),
    }
    result = check_drift(build_baseline(reference), current)
    assert set(result.features_drifted) == {"f1", "f10"}

    page = report_html(result)

    summary = page[page.index("<table class='summary'>") :]
    summary = summary[: summary.index("</table>")]
    rows = re.findall(r"<tr><td><a href='#feature-([^']+)'>", summary)
    assert rows == ["f10", "f1", "f2", "f11"]
    sections = re.findall(r"<section id='feature-([^']+)'>", page)
    assert sections == rows
    assert page.index("<table class='summary'>") < page.index("<section")
