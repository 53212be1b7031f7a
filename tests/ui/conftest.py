"""Fixtures of the browser suite: one `airflow-dl local airflow` and one chromium for the whole run."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.ui.airflow_stack import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    REPO,
    START_TIMEOUT,
    VENV_BIN,
    Stack,
    environment,
    free_port,
    small_digits_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("ui")
    dags = root / "dags"
    (dags / "configs").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "dl_pipeline.py", dags / "dl_pipeline.py")
    small_digits_config(dags / "configs" / "digits.yaml")
    port, mark, log = free_port(), uuid.uuid4().hex, root / "airflow-dl.log"
    home = root / "home"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "airflow-dl"),
                "local",
                "airflow",
                "--home",
                str(home),
                "--dags-folder",
                str(dags),
                "--port",
                str(port),
            ],
            cwd=root,
            env=environment(mark),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session, as a terminal's job is: Ctrl-C reaches only it
        )
    running = Stack(process, f"http://localhost:{port}", home, log, mark)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Airflow is up on" not in running.output():
            assert process.poll() is None, (
                f"local airflow exited {process.returncode}:\n{running.output()[-4000:]}"
            )
            assert time.monotonic() < deadline, (
                f"no login printed in {START_TIMEOUT}s:\n{running.output()[-4000:]}"
            )
            time.sleep(2)
        login = next(
            line for line in running.output().splitlines() if "log in as admin with password" in line
        )
        running.password = login.rsplit(" ", 1)[-1]
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=120)
        for left in running.survivors():  # never leave a stray Airflow on a shared machine
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(left.split(":", 1)[0]), signal.SIGKILL)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh headless chromium context (Debian's chromium: playwright cannot download its own here)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (make test-ui does)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield context
        finally:
            context.close()
