"""``airflow-dl trigger``: start a DAG run, wait for it, and exit with what happened.

Exit status, for a CI job to gate on: 0 the run succeeded, 1 it failed (or the request was refused:
a DAG that does not exist, a bad ``--conf``), 2 it outlasted ``--timeout``, 3 the API could not be
reached or refused the credentials (nothing is known about the run; retrying the job later is right).

Three ways in, one outcome:

* MWAA's ``InvokeRestApi`` (the default on MWAA): IAM-authenticated calls to the environment's
  Airflow REST API, on Airflow 2 (``/api/v1``) and 3 (``/api/v2``) alike.
* MWAA's CLI token (``--via cli``): ``airflow dags trigger`` through the web server's ``/aws_mwaa/cli``.
* Any Airflow 3 REST API (``--url``): a bearer token from ``$AIRFLOW_API_TOKEN`` or from
  ``/auth/token`` with a username and password.

Transient failures (HTTP 5xx, Airflow's 5xx through InvokeRestApi, dropped connections, throttling)
are retried with exponential backoff. The run ID is the caller's (CI passes ``ci__<commit>``): a re-run
for the same commit meets Airflow's 409 (the REST API) or "already exists" (the CLI) and waits on the
run that exists instead of failing, so a retried CI job never starts a second pipeline.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError, StubResponseError

from airflow_dl_provider.stacks.pacing import Poll
from airflow_dl_provider.stacks.pacing import Retry as Retry  # the CLI builds one through this module
from airflow_dl_provider.stacks.render import StackError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SUCCESS, FAILED, TIMEOUT = "success", "failed", "timeout"
EXIT_UNREACHABLE = 3
EXIT_CODES = {SUCCESS: 0, FAILED: 1, TIMEOUT: 2}
_TRANSIENT_HTTP = frozenset({500, 502, 503, 504})
_AUTH_HTTP = frozenset({401, 403})
_TRANSIENT_AWS = frozenset({"InternalServerException", "ThrottlingException", "ServiceUnavailableException"})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Unreachable(StackError):
    """The API could not be reached, or refused the credentials: exit status 3."""


class Conflict(Exception):
    """The run ID is taken (HTTP 409, or the CLI's "already exists"): the run exists; wait on it."""


def default_run_id(prefix: str = "ci") -> str:
    return f"{prefix}__{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}"


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(_ANSI.sub("", text).split())[:limit]


def _detail(payload: Any) -> str:
    """Airflow's error text: ``detail`` (FastAPI, Airflow 3) or ``title``/``detail`` (Connexion, Airflow 2)."""
    if isinstance(payload, dict):
        detail = payload.get("detail") or payload.get("title") or payload
        return _one_line(detail if isinstance(detail, str) else json.dumps(detail))
    return _one_line(str(payload))


def _with_retries(call: Callable[[], Any], poll: Poll, what: str) -> Any:
    """``call()``, retried on :class:`_Transient` with backoff; :class:`Unreachable` once they run out."""
    delays = poll.retry.delays()
    while True:
        try:
            return call()
        except _Transient as err:
            delay = next(delays, None)
            if delay is None:
                raise Unreachable(f"{what}: {err} (after {poll.retry.attempts} attempts)") from None
            poll.say(f"{what}: {err}; retrying in {delay:.0f}s")
            poll.sleep(delay)


class _Transient(Exception):
    pass


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
            return TIMEOUT
        poll.sleep(poll.interval)


def _http_once(method: str, url: str, body: Any, headers: Mapping[str, str]) -> Any:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    if body is not None and not isinstance(body, bytes) and "Content-Type" not in headers:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as err:
        raw = err.read().decode(errors="replace")
        try:
            detail = _detail(json.loads(raw))
        except ValueError:
            detail = _one_line(raw)
        if err.code in _TRANSIENT_HTTP:
            raise _Transient(f"{method} {url} returned {err.code}") from None
        if err.code in _AUTH_HTTP:
            raise Unreachable(f"{method} {url} refused the credentials ({err.code}: {detail})") from None
        if err.code == 409:
            raise Conflict(detail) from None
        raise StackError(f"trigger: {method} {url} returned {err.code}: {detail}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        raise _Transient(f"cannot reach {url} ({_one_line(str(reason))})") from None
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        raise Unreachable(
            f"{method} {url} answered something that is not Airflow's JSON: {_one_line(text, 120)}"
        ) from None


def _http(
    method: str,
    url: str,
    poll: Poll,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    what: str = "--url",
) -> Any:
    return _with_retries(lambda: _http_once(method, url, body, headers or {}), poll, what)


def _aws(call: Callable[[], Any], poll: Poll, what: str, environment: str) -> Any:
    """One MWAA API call: transient errors retried, the rest one line (:class:`Unreachable` for access)."""

    def once() -> Any:
        try:
            return call()
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            message = _one_line(str(err.response.get("Error", {}).get("Message", "")))
            if code in _TRANSIENT_AWS:
                raise _Transient(f"{what} answered {code}") from None
            if code == "ResourceNotFoundException":
                raise Unreachable(
                    f"--mwaa-env: no MWAA environment {environment!r} here ({message})"
                ) from None
            if code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
                raise Unreachable(
                    f"--mwaa-env: {what} on {environment!r} was refused ({code}: {message})"
                ) from None
            raise
        except BotoCoreError as err:  # no credentials, no connection, a timeout
            if isinstance(err, (ParamValidationError, StubResponseError)):
                raise  # a request this code got wrong is no network trouble
            name = type(err).__name__
            if name in (
                "EndpointConnectionError",
                "ConnectTimeoutError",
                "ReadTimeoutError",
                "ConnectionClosedError",
            ):
                raise _Transient(f"{what}: {_one_line(str(err))}") from None
            raise Unreachable(f"{what}: {_one_line(str(err))}") from None

    return _with_retries(once, poll, what)


class AirflowRestApi:
    """An Airflow 3 REST API (``/api/v2``) at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str = "",
        password: str = "",
        poll: Poll | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.poll = poll or Poll()
        if not token:
            if not username:
                raise StackError("trigger: give --token (or $AIRFLOW_API_TOKEN) or --username and --password")
            answer = _http(
                "POST", f"{self.base_url}/auth/token", self.poll, {"username": username, "password": password}
            )
            token = answer.get("access_token") if isinstance(answer, dict) else None
            if not token:
                raise Unreachable(f"--url: {self.base_url}/auth/token gave no access_token")
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return _http(method, f"{self.base_url}/api/v2{path}", self.poll, body, self.headers)

    def run(self, dag_id: str, run_id: str, conf: Mapping[str, Any], *, unpause: bool, poll: Poll) -> str:
        self.poll = poll
        if unpause:
            self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        # Airflow 3 requires logical_date in the body; null means "now, not a backfill".
        _start(
            lambda: self.call(
                "POST",
                f"/dags/{dag_id}/dagRuns",
                {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)},
            ),
            poll,
            dag_id,
            run_id,
        )
        return _wait(
            lambda: str(self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]),
            poll,
            f"{dag_id} {run_id}",
        )


def _start(trigger: Callable[[], Any], poll: Poll, dag_id: str, run_id: str) -> None:
    try:
        trigger()
    except Conflict:
        poll.say(f"{dag_id} {run_id}: exists already (a re-run for the same commit); waiting on it")


class _MwaaEnvironment:
    """An MWAA environment, and the Airflow version it runs (the API paths and CLI flags differ)."""

    def __init__(self, mwaa: Any, environment: str, *, poll: Poll | None = None) -> None:
        self.mwaa = mwaa
        self.environment = environment
        self.poll = poll or Poll()
        described = _aws(
            lambda: mwaa.get_environment(Name=environment), self.poll, "GetEnvironment", environment
        )
        self.airflow_version = str(described["Environment"]["AirflowVersion"])


class MwaaRestApi(_MwaaEnvironment):
    """An MWAA environment's Airflow REST API through ``InvokeRestApi`` (IAM auth, no token handling)."""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {"Name": self.environment, "Path": path, "Method": method}
        if body is not None:
            kwargs["Body"] = body

        def invoke() -> Any:
            try:
                return self.mwaa.invoke_rest_api(**kwargs)
            except ClientError as err:
                code = str(err.response.get("Error", {}).get("Code", ""))
                if code not in ("RestApiClientException", "RestApiServerException"):
                    raise
                status = int(err.response.get("RestApiStatusCode") or 0)
                detail = _detail(
                    err.response.get("RestApiResponse") or err.response["Error"].get("Message", "")
                )
                if code == "RestApiServerException" or status in _TRANSIENT_HTTP:
                    raise _Transient(f"Airflow answered {status or '5xx'} to {method} {path}") from None
                if status == 409:
                    raise Conflict(detail) from None
                if status in _AUTH_HTTP:
                    raise Unreachable(
                        f"--mwaa-env: Airflow on {self.environment!r} refused {method} {path} ({status}: {detail}); "
                        "the role needs airflow:InvokeRestApi and an Airflow role that allows it"
                    ) from None
                raise StackError(
                    f"trigger: {method} {path} on {self.environment!r} returned {status}: {detail}"
                ) from None

        response = _aws(invoke, self.poll, "InvokeRestApi", self.environment)
        return response.get("RestApiResponse") or {}

    def run(self, dag_id: str, run_id: str, conf: Mapping[str, Any], *, unpause: bool, poll: Poll) -> str:
        self.poll = poll
        if unpause:
            self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": dict(conf)}
        if not self.airflow_version.startswith("2."):
            body["logical_date"] = None
        _start(lambda: self.call("POST", f"/dags/{dag_id}/dagRuns", body), poll, dag_id, run_id)
        return _wait(
            lambda: str(self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]),
            poll,
            f"{dag_id} {run_id}",
        )


def json_in(stdout: str, kind: type = list) -> Any | None:
    """The JSON document of type ``kind`` in a CLI's output, skipping the log lines around it.

    Airflow 3's CLI writes its log lines (``[2025-01-01T00:00:00.000+0000] {dagbag.py:588} INFO - ...``)
    to stdout with the ``-o json`` output, so the output is not one JSON document.
    """
    text = _ANSI.sub("", stdout)
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, kind):
        return whole
    decoder = json.JSONDecoder()
    for start in re.finditer(r"^\s*[\[{]", text, re.MULTILINE):
        try:
            value, _end = decoder.raw_decode(text[start.end() - 1 :])
        except ValueError:
            continue
        if isinstance(value, kind):
            return value
    return None


class MwaaCli(_MwaaEnvironment):
    """``airflow`` CLI commands through MWAA's CLI token endpoint."""

    def __init__(
        self, mwaa: Any, environment: str, *, scheme: str = "https", poll: Poll | None = None
    ) -> None:
        super().__init__(mwaa, environment, poll=poll)
        self.scheme = scheme

    def command(self, line: str) -> tuple[str, str]:
        """Run one ``airflow`` CLI command; return its stdout and stderr. A fresh token per call: they last 60s."""
        token = _aws(
            lambda: self.mwaa.create_cli_token(Name=self.environment),
            self.poll,
            "CreateCliToken",
            self.environment,
        )
        url = f"{self.scheme}://{token['WebServerHostname']}/aws_mwaa/cli"
        headers = {"Authorization": f"Bearer {token['CliToken']}", "Content-Type": "text/plain"}
        result = _http("POST", url, self.poll, line.encode(), headers, what="--mwaa-env")
        if not isinstance(result, dict):
            raise Unreachable(f"--mwaa-env: {url} did not answer with stdout and stderr")
        return (
            base64.b64decode(result.get("stdout") or "").decode(errors="replace"),
            base64.b64decode(result.get("stderr") or "").decode(errors="replace"),
        )

    def _refused(self, line: str, stdout: str, stderr: str) -> StackError:
        lines = [x for x in (stderr or stdout).splitlines() if x.strip()]
        last = _one_line(lines[-1]) if lines else "no output"
        return StackError(
            f"trigger: airflow {' '.join(line.split()[:2])} failed on {self.environment!r}: {last}"
        )

    def state(self, dag_id: str, run_id: str) -> str:
        selector = f"-d {dag_id}" if self.airflow_version.startswith("2.") else dag_id
        line = f"dags list-runs {selector} -o json"
        stdout, stderr = self.command(line)
        runs = json_in(stdout)
        if runs is None:
            if stdout.strip() or "Error" in stderr or "Traceback" in stderr:
                raise self._refused(line, stdout, stderr)
            runs = []  # no runs yet: the CLI prints nothing
        for run in runs:
            if isinstance(run, dict) and run.get("run_id") == run_id:
                return str(run.get("state"))
        return "queued"

    def run(self, dag_id: str, run_id: str, conf: Mapping[str, Any], *, unpause: bool, poll: Poll) -> str:
        self.poll = poll
        if unpause:
            self.command(f"dags unpause {dag_id}")
        conf_arg = f" --conf '{json.dumps(dict(conf))}'" if conf else ""
        line = f"dags trigger {dag_id} --run-id {run_id}{conf_arg}"
        stdout, stderr = self.command(line)
        if "already exists" in stdout + stderr:
            poll.say(f"{dag_id} {run_id}: exists already (a re-run for the same commit); waiting on it")
        elif not re.search(rf"(?<![\w.:+-]){re.escape(run_id)}(?![\w.:+-])", stdout):
            # Airflow 2 prints "Created <DagRun ...: <run id>, ...>", 3 the run's row: both name the run.
            raise self._refused(line, stdout, stderr)
        return _wait(lambda: self.state(dag_id, run_id), poll, f"{dag_id} {run_id}")
