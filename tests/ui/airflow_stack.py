"""The running `airflow-dl local airflow` of the browser suite, and how the tests talk to it.

The browser suite: `airflow-dl local airflow` as `make airflow` runs it, driven by Debian's chromium.

It runs under `make test-ui` (which sets AIRFLOW_DL_UI_TEST=1 and installs chromium if missing) and is
skipped elsewhere: it starts a whole Airflow and runs a pipeline, about four minutes on two cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import subprocess

REPO = Path(__file__).parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("AIRFLOW_DL_CHROMIUM", "/usr/bin/chromium"))
# Every flag a headless run in a container needs; the user data directory is added per run.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The variable every process the stack starts inherits: how the last test finds any that survive.
MARK = "AIRFLOW_DL_UI_TEST_MARK"
START_TIMEOUT = 420
RUN_TIMEOUT = 480


def small_digits_config(target: Path) -> None:
    """The demo's digits config, cut to what the page shows in a few minutes on two cores.

    Raw CSV instead of labeling, one instance, a few epochs, two tuning trials, no compilation and no
    retraining; registry, drift baseline and batch transform stay, so every section has real data.
    """
    config = yaml.safe_load((REPO / "dags" / "configs" / "digits.yaml").read_text())
    for stage in ("labeling", "label_validation", "compilation", "retraining"):
        config.pop(stage, None)
    config["data"]["source"] = f"s3://{config['bucket']}/{config['prefix']}/raw/digits.csv"
    training = config["training"]
    training.update(instance_count=1, source_dir=str(REPO / "docker" / "training"))
    training["hyperparameters"].update(epochs=4)
    config["tuning"].update(
        max_parallel_jobs=2,
        parameter_ranges={"lr": {"type": "categorical", "values": ["0.1", "0.2"]}},
    )
    config["poll_interval"] = 2
    target.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Stack:
    """The running `airflow-dl local airflow` and what the tests learned about it."""

    process: subprocess.Popen[bytes]
    url: str
    home: Path
    log: Path
    mark: str
    password: str = ""
    runs: dict[str, str] = field(default_factory=dict)
    _token: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def token(self) -> str:
        import httpx

        if self._token:
            return self._token
        answer = httpx.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        answer.raise_for_status()
        self._token = str(answer.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        import httpx

        answer = httpx.request(
            method,
            f"{self.url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}", **(headers or {})},
            timeout=60,
            **kwargs,
        )
        answer.raise_for_status()
        return answer.json()

    def survivors(self) -> list[str]:
        """Processes still carrying this stack's mark (any descendant of it inherits the variable)."""
        import psutil

        left = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get(MARK) == self.mark:
                    left.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:160]}")
        return left

    def run_dag(self, dag_id: str) -> str:
        """Unpause ``dag_id``, trigger it, wait for the run to end; return its run id."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # the DAG processor parses the file a while after the start
            try:
                self.api("GET", f"/dags/{dag_id}")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(3)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run_id = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]
        deadline = time.monotonic() + RUN_TIMEOUT
        state = ""
        while time.monotonic() < deadline:
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                break
            time.sleep(5)
        tasks = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        summary = {t["task_id"]: t["state"] for t in tasks}
        assert state == "success", f"{dag_id} {run_id} ended {state!r}: {summary}\n{self.output()[-4000:]}"
        self.runs[dag_id] = run_id
        return run_id


def free_port() -> int:
    from airflow_dl_provider.backends.local.processes import free_port

    return free_port()


def environment(mark: str) -> dict[str, str]:
    """A new user's shell: no Airflow variable of the test session, the venv not on PATH."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
    return {**env, "PATH": path, MARK: mark, "PYTHONUNBUFFERED": "1"}


def json_dump(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)[:3000]
