"""``airflow-dl demo`` as a new user runs it: from the repository root, no AWS, no Airflow set up."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 600
ACCURACY = re.compile(
    r"^Test accuracy on held-out digits: (\d\.\d{4}) \((meets|MISSES) the 0\.90 target\)$", re.M
)


def _new_user_env(tripwire_home: Path) -> dict[str, str]:
    """This shell's environment without the Airflow settings the test session made.

    AIRFLOW_HOME points at an empty directory: the demo must use its own throwaway home, so anything
    written there is a demo that would have touched the user's ~/airflow.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tripwire_home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:  # a zombie is already dead; only its parent has not read its exit status yet
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return False


def _accepts_connections(endpoint_url: str) -> bool:
    url = urlparse(endpoint_url)
    try:
        with socket.create_connection((url.hostname, url.port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(DEMO_TIMEOUT_S + 60)
def test_demo_trains_the_digits_model_and_cleans_up(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    tripwire = tmp_path / "user-airflow-home"
    server_record = home / "local" / "server.json"
    cmd = [sys.executable, "-m", "airflow_dl_provider.cli", "demo", "--home", str(home)]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=_new_user_env(tripwire),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Read the server's record while the demo runs: stopping the server removes it.
    server: dict[str, object] = {}
    while proc.poll() is None and not server:
        if server_record.exists():
            server = json.loads(server_record.read_text())  # written atomically: never partial
        if time.monotonic() - started > DEMO_TIMEOUT_S:
            break
        time.sleep(0.2)
    try:
        output, _ = proc.communicate(timeout=max(1.0, DEMO_TIMEOUT_S - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"airflow-dl demo ran past {DEMO_TIMEOUT_S}s:\n{output[-5000:]}")

    print(output)  # shown by pytest -rP, and on failure
    assert proc.returncode == 0, output[-5000:]
    progress, summary = output.split("[5/5] summary", 1)
    assert "2 x ml.p3dn.24xlarge" in progress, output[-5000:]
    assert re.search(r"training job digits-train-\w+: Completed/Completed", progress), output[-5000:]
    # Labeling: both the simulated workforce and the auto-labeling model labeled part, accurately.
    labeled = re.search(
        r"(\d+) labeled: HumanLabeled (\d+), MachineLabeled (\d+); label accuracy vs hidden truth (\d\.\d+)",
        summary,
    )
    assert labeled, summary
    total, human, machine, label_accuracy = (
        int(labeled[1]),
        int(labeled[2]),
        int(labeled[3]),
        float(labeled[4]),
    )
    assert total == human + machine == 1797 and human > 0 and machine > 0
    assert label_accuracy >= 0.9
    assert re.search(r"passed: (\d+)/\1 expectations on 1797 rows", summary), summary
    assert "tuned is at least as accurate" in summary, summary
    assert re.search(r"eager [\d.]+ ms -> compiled [\d.]+ ms", summary), summary
    # Registered pending, approved by the gate, deployed with data capture.
    assert re.search(r"model-package/digits/\d+ \(PendingManualApproval\)", summary), summary
    assert re.search(r"approval \(auto\): approved: accuracy \d\.\d+ >= min 0\.9000", summary), summary
    assert re.search(r"endpoint digits: created -> InService; traffic shift none", summary), summary
    assert re.search(r"\d+ records -> s3://", summary), summary
    # The drift loop closed: drift found, both models scored on one holdout, a decision with a reason.
    assert re.search(r"drift monitor: [1-9]\d* of \d+ features drifted", summary), summary
    assert re.search(r"holdout accuracy: challenger \d\.\d+, champion \d\.\d+", summary), summary
    assert re.search(r"decision: (promoted|kept_champion): .+", summary), summary
    # The monitor read the endpoint's capture; a promoted challenger is deployed with a canary shift.
    assert re.search(r"drift check read [1-9]\d* files \(1797 rows\) of s3://\S+/capture/digits/", summary), (
        summary
    )
    if "decision: promoted" in summary:
        assert re.search(r"endpoint digits: updated -> InService; traffic shift CANARY", summary), summary
    match = ACCURACY.search(output)
    assert match, output[-5000:]
    assert float(match.group(1)) >= 0.90
    assert match.group(2) == "meets"

    # The embedded server is gone: record removed, process ended, port closed.
    assert server, f"the demo never wrote {server_record}:\n{output[-3000:]}"
    assert not server_record.exists()
    pid, endpoint = int(str(server["pid"])), str(server["endpoint_url"])
    deadline = time.monotonic() + 15
    while (_alive(pid) or _accepts_connections(endpoint)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), f"embedded S3 server (pid {pid}) still running after the demo"
    assert not _accepts_connections(endpoint), f"{endpoint} still answers after the demo"

    assert not tripwire.exists() or not any(tripwire.iterdir()), "the demo wrote into the user's AIRFLOW_HOME"
