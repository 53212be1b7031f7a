"""`local airflow`'s stop: every process of standalone's session goes, however it was started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from airflow_dl_provider import local_airflow

if TYPE_CHECKING:
    from pathlib import Path

# A stand-in for standalone: it starts a component that moves to its own process group (as Airflow's
# task supervisor does with a task) and one that ignores SIGTERM, then waits; SIGINT it ignores too.
TREE = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
regrouped = subprocess.Popen([sys.executable, "-c", "import os, time; os.setpgid(0, 0); time.sleep(600)"])
stubborn = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE)
stubborn.stdout.readline()
print(regrouped.pid, stubborn.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stop_session_leaves_no_process_of_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_airflow, "STANDALONE_GRACE_SECONDS", 1.0)
    monkeypatch.setattr(local_airflow, "TERM_GRACE_SECONDS", 2.0)
    leader = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, start_new_session=True)
    assert leader.stdout is not None
    regrouped, stubborn = (int(pid) for pid in leader.stdout.readline().split())
    members = local_airflow.session_members(leader.pid)
    assert {leader.pid, regrouped, stubborn} <= set(members)
    assert os.getpgid(regrouped) != leader.pid  # out of the group, still in the session

    outlived = local_airflow.stop_session(leader)

    assert outlived == 3  # none of them stopped on SIGINT alone
    assert not any(_alive(pid) for pid in (leader.pid, regrouped, stubborn))
    assert local_airflow.session_members(leader.pid) == []


def test_stop_session_is_quick_when_standalone_stops_its_own() -> None:
    leader = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    time.sleep(0.2)
    started = time.monotonic()

    assert local_airflow.stop_session(leader) == 0
    assert leader.returncode is not None
    assert time.monotonic() - started < local_airflow.STANDALONE_GRACE_SECONDS


def test_admin_password_is_made_once_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "airflow"

    first = local_airflow.admin_password(home)
    again = local_airflow.admin_password(home)

    assert first == again and len(first) >= 12
    stored = home / "simple_auth_manager_passwords.json.generated"
    assert json.loads(stored.read_text()) == {"admin": first}
    assert stored.stat().st_mode & 0o077 == 0


def test_a_venv_without_airflow_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))

    with pytest.raises(SystemExit, match=r"^local airflow: no 'airflow' next to .*; install the provider"):
        local_airflow.venv_bin()
