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
    summary = output.split("[5/5] summary", 1)[-1]
    assert "Completed" in summary, output[-5000:]
    assert "2 x ml.p3dn.24xlarge" in summary, output[-5000:]
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
