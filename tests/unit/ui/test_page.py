"""The page's HTML: everything escaped, self-contained (no script, no CDN), the sections in order."""

from __future__ import annotations

import re

from airflow_dl_provider.ui.overview import Cost, DriftFeature, DriftReport, Job, Overview, Run
from airflow_dl_provider.ui.page import Links, duration, index_page, pipeline_page

LINKS = Links("/deep-learning", run_url=lambda d, r: f"/dags/{d}/runs/{r}", dag_url=lambda d: f"/dags/{d}")


def _overview() -> Overview:
    job = Job(
        "train",
        "training",
        "<script>alert(1)</script>",
        "Completed",
        None,
        61.0,
        Cost(1.5, "1 x ml.m5.xlarge"),
    )
    run = Run("dl_pipeline_x", "manual__1", "success", None, 125.0, jobs=[job], tasks={"train": "success"})
    drift = DriftReport(
        "manual__2",
        "s3://b/r.json",
        True,
        100,
        "1",
        [
            DriftFeature("p3", "drifted", 4.5, ["psi 0.9 >= 0.2"], {"psi": 0.9}),
            DriftFeature("p1", "stable", 0.1, [], {}),
        ],
    )
    overview = Overview("x", {"pipeline": "dl_pipeline_x"}, runs=[run], drift=drift)
    overview.errors["registry"] = "ThrottlingException: Rate exceeded"
    return overview


def test_pipeline_page_escapes_and_needs_nothing_from_outside() -> None:
    html = pipeline_page(_overview(), LINKS)

    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", html)
    assert "$1.50" in html and "1m 01s" in html
    assert (
        html.index("id='runs'")
        < html.index("id='leaderboard'")
        < html.index("id='drift'")
        < html.index("id='registry'")
    )
    assert "registry: ThrottlingException: Rate exceeded" in html
    # The summary first, then the features, the most severe first.
    drift = html[html.index("id='drift'") :]
    assert (
        drift.index("features drifted")
        < drift.index("Features by severity")
        < drift.index(">p3<")
        < drift.index(">p1<")
    )


def test_links_into_airflow_open_in_the_top_window() -> None:
    html = pipeline_page(_overview(), LINKS)

    assert "<a target='_top' href='/dags/dl_pipeline_x/runs/manual__1'>" in html


def test_index_without_pipelines_says_what_it_looks_for() -> None:
    assert "No pipeline DAG (dl_pipeline_*" in index_page([], LINKS)


def test_durations() -> None:
    assert [duration(s) for s in (None, 5, 65, 3725)] == ["", "5s", "1m 05s", "1h 02m"]


def test_each_job_row_is_the_anchor_its_local_extra_link_opens() -> None:
    from airflow_dl_provider.links.console import SageMakerJobLink

    overview = _overview()
    overview.runs[0].jobs[0].name = "digits-train-1"
    html = pipeline_page(overview, LINKS)
    operator = type("Op", (), {"dag_id": "dl_pipeline_x"})()

    anchor = SageMakerJobLink.local_url(operator, "digits-train-1").partition("#")[2]
    assert f"<span id='{anchor}'>digits-train-1</span>" in html
