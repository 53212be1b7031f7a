"""Process liveness: a process is alive until no thread of it runs, whatever its leader shows."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_dl_provider.backends.local.processes import process_alive

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# The leader ends with pthread_exit while another thread keeps running: the kernel shows the leader as a
# zombie, yet the process holds its descriptors (and its locks) until that thread is gone too.
_LEADER_EXITS_FIRST = """
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(60,)).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def _leader_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]


def test_a_process_whose_leader_exited_first_is_alive_until_its_last_thread_ends() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _LEADER_EXITS_FIRST])
    try:
        deadline = time.monotonic() + 30
        while _leader_state(proc.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _leader_state(proc.pid) == "Z"
        assert process_alive(proc.pid), "a zombie leader with a running thread was reported gone"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not process_alive(proc.pid)


def test_no_pid_and_a_reaped_pid_are_not_alive() -> None:
    assert not process_alive(None)
    assert not process_alive(0)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    assert not process_alive(proc.pid)
