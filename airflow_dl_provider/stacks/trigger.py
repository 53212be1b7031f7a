"""``airflow-dl trigger``: start a DAG run, wait for it, exit non-zero unless it succeeded.

Three ways in, one outcome: a CI job gates on the exit status.

* MWAA's ``InvokeRestApi`` (the default on MWAA): IAM-authenticated calls to the environment's
  Airflow REST API, on Airflow 2 (``/api/v1``) and 3 (``/api/v2``) alike.
* MWAA's CLI token (``--via cli``): ``airflow dags trigger`` through the web server's ``/aws_mwaa/cli``.
* Any Airflow 3 REST API (``--url``): a bearer token from ``$AIRFLOW_API_TOKEN`` or from
  ``/auth/token`` with a username and password.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.stacks.render import StackError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SUCCESS, FAILED = "success", "failed"
EXIT_CODES = {SUCCESS: 0, FAILED: 1, "timeout": 2}


@dataclass
class Poll:
    interval: float = 15.0
    timeout: float = 6 * 3600
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = field(default=lambda m: print(m, flush=True))


def default_run_id(prefix: str = "ci") -> str:
    return f"{prefix}__{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}"


def _wait(get_state: Callable[[], str], poll: Poll, what: str) -> str:
    """Poll ``get_state`` until the run ends; ``timeout`` when it outlasts ``poll.timeout``."""
    deadline = poll.clock() + poll.timeout
    last = None
    while True:
        state = get_state()
        if state != last:
            poll.say(f"{what}: {state}")
            last = state
        if state in (SUCCESS, FAILED):
            return state
        if poll.clock() >= deadline:
            poll.say(f"{what}: still {state} after {poll.timeout:.0f}s")
            return "timeout"
        poll.sleep(poll.interval)


def _http(method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if body is not None and not isinstance(body, bytes):
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:300]
        raise StackError(f"trigger: {method} {url} returned {err.code}: {detail}") from None
    except urllib.error.URLError as err:
        raise StackError(f"--url: cannot reach {url}: {err.reason}") from None
    return json.loads(text) if text.strip() else {}


class AirflowRestApi:
    """An Airflow 3 REST API (``/api/v2``) at ``base_url``."""

    def __init__(
        self, base_url: str, *, token: str | None = None, username: str = "", password: str = ""
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not token:
            if not username:
                raise StackError("trigger: give --token (or $AIRFLOW_API_TOKEN) or --username and --password")
            token = _http(
                "POST", f"{self.base_url}/auth/token", {"username": username, "password": password}
            )["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return _http(method, f"{self.base_url}/api/v2{path}", body, self.headers)

    def run(self, dag_id: str, run_id: str, conf: Mapping[str, Any], *, unpause: bool, poll: Poll) -> str:
        if unpause:
            self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        # Airflow 3 requires logical_date in the body; null means "now, not a backfill".
        self.call(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)},
        )
        return _wait(
            lambda: str(self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]),
            poll,
            f"{dag_id} {run_id}",
        )


class MwaaRestApi:
    """An MWAA environment's Airflow REST API through ``InvokeRestApi`` (IAM auth, no token handling)."""

    def __init__(self, mwaa: Any, environment: str) -> None:
        self.mwaa = mwaa
        self.environment = environment
        self.airflow_version = str(mwaa.get_environment(Name=environment)["Environment"]["AirflowVersion"])

    def call(self, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {"Name": self.environment, "Path": path, "Method": method}
        if body is not None:
            kwargs["Body"] = body
        response = self.mwaa.invoke_rest_api(**kwargs)
        return response.get("RestApiResponse") or {}

    def run(self, dag_id: str, run_id: str, conf: Mapping[str, Any], *, unpause: bool, poll: Poll) -> str:
        if unpause:
            self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": dict(conf)}
        if not self.airflow_version.startswith("2."):
            body["logical_date"] = None
        self.call("POST", f"/dags/{dag_id}/dagRuns", body)
        return _wait(
            lambda: str(self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]),
            poll,
            f"{dag_id} {run_id}",
        )


class MwaaCli:
    """``airflow`` CLI commands through MWAA's CLI token endpoint."""

    def __init__(self, mwaa: Any, environment: str, *, scheme: str = "https") -> None:
        self.mwaa = mwaa
        self.environment = environment
        self.scheme = scheme
        self.airflow_version = str(mwaa.get_environment(Name=environment)["Environment"]["AirflowVersion"])

    def command(self, line: str) -> str:
        """Run one ``airflow`` CLI command; return its stdout. A fresh token per call: they last 60s."""
        token = self.mwaa.create_cli_token(Name=self.environment)
        url = f"{self.scheme}://{token['WebServerHostname']}/aws_mwaa/cli"
        headers = {"Authorization": f"Bearer {token['CliToken']}", "Content-Type": "text/plain"}
        result = _http("POST", url, line.encode(), headers)
        stdout = base64.b64decode(result.get("stdout", "")).decode()
        stderr = base64.b64decode(result.get("stderr", "")).decode()
        if "Error" in stderr or "Traceback" in stderr:
            raise StackError(
                f"trigger: airflow {line.split(' ', 2)[:2]} failed on MWAA: {stderr.strip()[-300:]}"
            )
        return stdout

    def state(self, dag_id: str, run_id: str) -> str:
        selector = f"-d {dag_id}" if self.airflow_version.startswith("2.") else dag_id
        runs = json.loads(self.command(f"dags list-runs {selector} -o json") or "[]")
        for run in runs:
            if run.get("run_id") == run_id:
                return str(run.get("state"))
        return "queued"

    def run(self, dag_id: str, run_id: str, conf: Mapping[str, Any], *, unpause: bool, poll: Poll) -> str:
        if unpause:
            self.command(f"dags unpause {dag_id}")
        conf_arg = f" --conf '{json.dumps(dict(conf))}'" if conf else ""
        self.command(f"dags trigger {dag_id} --run-id {run_id}{conf_arg}")
        return _wait(lambda: self.state(dag_id, run_id), poll, f"{dag_id} {run_id}")
