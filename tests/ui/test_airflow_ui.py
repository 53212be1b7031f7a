"""`make airflow` as a new user meets it: start, log in, run the pipeline, read the provider's page and a
task's log in a real browser, then Ctrl-C and nothing left behind. Tests run in file order on one stack."""

from __future__ import annotations

import os
import re
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.ui.airflow_stack import json_dump

if TYPE_CHECKING:
    from tests.ui.airflow_stack import Stack

pytestmark = pytest.mark.skipif(
    os.environ.get("AIRFLOW_DL_UI_TEST") != "1", reason="the browser suite runs under `make test-ui`"
)

PIPELINE, MONITOR = "dl_pipeline_digits", "dl_drift_monitor_digits"
# Airflow's own UI logs these while it runs, with nothing wrong: the list stays short and named.
BENIGN_CONSOLE = (re.compile(r"Download the React DevTools"),)


class Console:
    """Every console error and uncaught exception of the pages it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("console", lambda m: m.type == "error" and self._add(f"console: {m.text} ({page.url})"))
        page.on("pageerror", lambda e: self._add(f"pageerror: {e} ({page.url})"))
        return page

    def _add(self, message: str) -> None:
        if not any(p.search(message) for p in BENIGN_CONSOLE):
            self.errors.append(message)


def _log_in(page: Any, stack: Stack) -> None:
    page.goto(stack.url + "/", wait_until="networkidle")
    page.wait_for_selector("input[name='username']", timeout=60_000)
    page.fill("input[name='username']", "admin")
    page.fill("input[name='password']", stack.password)
    page.click("button[type='submit']")
    page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"), timeout=60_000)
    page.wait_for_load_state("networkidle")


def _xcom(stack: Stack, dag_id: str, task_id: str) -> Any:
    run_id = stack.runs[dag_id]
    entry = stack.api(
        "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    )
    return entry["value"]


def test_start_prints_the_login_and_seeds_the_demo_data(stack: Stack) -> None:
    output = stack.output()

    assert "FileNotFoundError" not in output
    assert f"Airflow is up on {stack.url}: log in as admin with password {stack.password}" in output
    assert "seeded 1797 digit images and s3://airflow-dl-demo/digits/raw/digits.csv" in output
    # The drift monitor watches the endpoint's capture, and this config has no retraining: no batch file
    # is seeded (the requests sent to the endpoint are the monitor's data).
    assert "seeded the shifted batch" not in output
    health = stack.api("GET", "/monitor/health")
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", json_dump(health)


def test_triggered_pipeline_and_drift_monitor_succeed(stack: Stack) -> None:
    from airflow_dl_provider.demo import send_to_endpoint, shifted_batch

    stack.run_dag(PIPELINE)
    # Clients call the endpoint the pipeline deployed; its data capture is what the monitor reads.
    assert send_to_endpoint(stack.home, "digits", shifted_batch()[0]) > 0
    stack.run_dag(MONITOR)

    check = _xcom(stack, MONITOR, "check_drift")
    assert check["drifted"] is True, json_dump(check)


def test_plugin_page_shows_runs_jobs_leaderboard_drift_and_registry(stack: Stack, browser: Any) -> None:
    page = browser.new_page()
    _log_in(page, stack)  # before it the UI's own calls answer 401, as they should
    console = Console()
    console.watch(page)

    page.goto(f"{stack.url}/plugin/deep-learning", wait_until="networkidle")
    frame = page.frame_locator("iframe").first
    frame.locator("text=Deep learning pipelines").wait_for(timeout=60_000)
    frame.locator("a", has_text="digits").first.click()
    frame.locator("h1", has_text="Pipeline digits").wait_for(timeout=60_000)

    page.goto(f"{stack.url}/deep-learning/pipelines/digits", wait_until="networkidle")
    text = page.inner_text("body")
    train, tune = _xcom(stack, PIPELINE, "train"), _xcom(stack, PIPELINE, "tune")
    registered = _xcom(stack, PIPELINE, "register")
    for expected in (stack.runs[PIPELINE], stack.runs[MONITOR], train["job_name"], tune["job_name"]):
        assert expected in text, expected
    assert page.locator(".error").count() == 0, page.inner_text(".error")
    # Each job row has a status and an estimated cost (the local jobs priced as SageMaker would).
    row = page.locator("tr", has_text=train["job_name"]).first
    assert "Completed" in row.inner_text() and "$" in row.inner_text(), row.inner_text()
    leaderboard = page.locator("#leaderboard ~ table").first.inner_text()
    assert leaderboard.count(f"{tune['job_name']}-") >= 2 or leaderboard.count("Completed") >= 2, leaderboard
    drift = page.locator("#drift ~ table").nth(1).inner_text()
    first_feature = drift.splitlines()[1]
    assert "drifted" in first_feature, drift[:500]
    registry = page.inner_text("#registry ~ p")
    assert "champion: version" in registry and registered["model_package_arn"].rsplit("/", 1)[-1] in text
    assert console.errors == [], console.errors


def test_task_log_shows_the_job_lines_and_its_link(stack: Stack, browser: Any) -> None:
    run_id = stack.runs[PIPELINE]
    train = _xcom(stack, PIPELINE, "train")
    answer = stack.api("GET", f"/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/train/links")
    links = {
        name: url for name, url in answer["extra_links"].items() if url
    }  # links with nothing to open hide
    # On the local backend: the job's row on the provider's page, and the artifacts on the embedded S3.
    assert links["SageMaker Job"].endswith(f"#job-{train['job_name']}"), links
    assert (
        links["Model Artifacts"].startswith("http://127.0.0.1:") and "Signature" in links["Model Artifacts"]
    )
    log = stack.api(
        "GET",
        f"/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/train/logs/1",
        headers={"Accept": "application/json"},
    )
    lines = "\n".join(str(e.get("event", e)) if isinstance(e, dict) else str(e) for e in log["content"])
    assert f"TrainingJob {train['job_name']}" in lines, lines[-3000:]

    console = Console()
    page = console.watch(browser.new_page())
    page.goto(f"{stack.url}/dags/{PIPELINE}/runs/{run_id}/tasks/train", wait_until="networkidle")
    page.locator(f"text={train['job_name']}").first.wait_for(timeout=60_000)
    # Airflow 3 shows the extra links on the task instance's Details tab, as links that open the page.
    page.goto(f"{stack.url}/dags/{PIPELINE}/runs/{run_id}/tasks/train/details", wait_until="networkidle")
    for name, url in links.items():
        link = page.get_by_role("link", name=name).first
        link.wait_for(timeout=60_000)
        assert link.get_attribute("href") == url
    assert console.errors == [], console.errors


def test_ctrl_c_stops_everything_it_started(stack: Stack) -> None:
    from airflow_dl_provider.backends.local import server
    from airflow_dl_provider.backends.local.state import JobStore
    from airflow_dl_provider.backends.local.workers import LOCAL_WORKERS

    assert stack.survivors(), "the stack's processes carry the mark (or this test proves nothing)"
    stack.process.send_signal(signal.SIGINT)
    code = stack.process.wait(timeout=120)

    deadline = time.monotonic() + 10
    while stack.survivors() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stack.survivors() == [], stack.output()[-3000:]
    assert code == 0, stack.output()[-3000:]
    assert "stopping Airflow and everything it started" in stack.output()
    assert server.status(stack.home) is None
    store = JobStore(stack.home)
    assert not [job.name for key in LOCAL_WORKERS for job in store.all(key) if job.runner_alive()]
