"""airflow-dl trigger: MWAA InvokeRestApi and CLI token (Stubber), and an Airflow 3 REST API on 127.0.0.1.

Each exit status is reached the way CI meets it: 0 success, 1 failed (or refused as a bad input),
2 timed out, 3 unreachable or credentials refused; transient failures are retried with backoff and a
taken run ID (409, "already exists") means waiting on the run that exists.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import Stubber

from airflow_dl_provider.cli import main
from airflow_dl_provider.stacks.render import StackError
from airflow_dl_provider.stacks.trigger import (
    AirflowRestApi,
    MwaaCli,
    MwaaRestApi,
    Poll,
    Retry,
    Unreachable,
    json_in,
)

ENV = "airflow-dl"


def _poll(sleeps: list | None = None, said: list | None = None, attempts: int = 6) -> Poll:
    return Poll(
        interval=0,
        timeout=60,
        sleep=(sleeps if sleeps is not None else []).append,
        say=(said if said is not None else []).append,
        retry=Retry(attempts=attempts),
    )


def _mwaa():
    return boto3.client("mwaa", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _environment(version: str) -> dict:
    return {"Environment": {"Name": ENV, "AirflowVersion": version, "Status": "AVAILABLE"}}


@pytest.mark.parametrize(
    ("version", "final", "logical_date"), [("2.11.0", "success", False), ("3.0.6", "failed", True)]
)
def test_mwaa_invoke_rest_api_triggers_and_waits(version, final, logical_date):
    mwaa = _mwaa()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment(version), {"Name": ENV})
        body = {"dag_run_id": "ci__1", "conf": {"x": 1}}
        if logical_date:
            body["logical_date"] = None
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": {"state": "queued"}},
            {"Name": ENV, "Path": "/dags/d/dagRuns", "Method": "POST", "Body": body},
        )
        for state in ("running", final):
            stub.add_response(
                "invoke_rest_api",
                {"RestApiStatusCode": 200, "RestApiResponse": {"state": state}},
                {"Name": ENV, "Path": "/dags/d/dagRuns/ci__1", "Method": "GET"},
            )
        state = MwaaRestApi(mwaa, ENV).run("d", "ci__1", {"x": 1}, unpause=False, poll=_poll())
        stub.assert_no_pending_responses()
    assert state == final


class Status:
    """A route's answer with a status other than 200."""

    def __init__(self, code: int, payload) -> None:
        self.code, self.payload = code, payload


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}
    seen: list = []

    def _reply(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        key = (self.command, self.path)
        responses = self.routes.get(key)
        if not responses:
            self.send_response(404)
            self.end_headers()
            return
        payload = responses.pop(0) if len(responses) > 1 else responses[0]
        status = 200
        if isinstance(payload, Status):
            status, payload = payload.code, payload.payload
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _reply

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.routes, _Handler.seen = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_mwaa_cli_token_triggers_and_reads_the_run_state(server):
    host = f"127.0.0.1:{server.server_address[1]}"
    _Handler.routes[("POST", "/aws_mwaa/cli")] = [
        # Airflow 2's dags trigger names the run it created.
        {
            "stdout": _b64(
                "Created <DagRun d @ 2025-01-01 00:00:00+00:00: ci__2, state:queued, externally triggered: True>"
            ),
            "stderr": "",
        },
        {"stdout": _b64(json.dumps([{"run_id": "ci__2", "state": "running"}])), "stderr": ""},
        {"stdout": _b64(json.dumps([{"run_id": "ci__2", "state": "success"}])), "stderr": ""},
    ]
    mwaa = _mwaa()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment("2.11.0"), {"Name": ENV})
        for _ in range(3):
            stub.add_response(
                "create_cli_token", {"CliToken": "tok", "WebServerHostname": host}, {"Name": ENV}
            )
        state = MwaaCli(mwaa, ENV, scheme="http").run("d", "ci__2", {}, unpause=False, poll=_poll())
        stub.assert_no_pending_responses()
    assert state == "success"
    commands = [body for _m, _p, _a, body in _Handler.seen]
    assert commands[0] == "dags trigger d --run-id ci__2"
    assert commands[1] == "dags list-runs -d d -o json"
    assert all(auth == "Bearer tok" for _m, _p, auth, _b in _Handler.seen)


def test_airflow3_rest_api_with_password_login(server):
    url = f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.routes.update(
        {
            ("POST", "/auth/token"): [{"access_token": "jwt"}],
            ("PATCH", "/api/v2/dags/d"): [{"is_paused": False}],
            ("POST", "/api/v2/dags/d/dagRuns"): [{"dag_run_id": "r1", "state": "queued"}],
            ("GET", "/api/v2/dags/d/dagRuns/r1"): [{"state": "running"}, {"state": "success"}],
        }
    )
    api = AirflowRestApi(url, username="admin", password="pw")
    assert api.run("d", "r1", {"a": 1}, unpause=True, poll=_poll()) == "success"
    trigger = next(s for s in _Handler.seen if s[:2] == ("POST", "/api/v2/dags/d/dagRuns"))
    assert json.loads(trigger[3]) == {"dag_run_id": "r1", "logical_date": None, "conf": {"a": 1}}
    assert trigger[2] == "Bearer jwt"


def test_cli_exit_status_gates_ci(server, capsys):
    url = f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.routes.update(
        {
            ("POST", "/api/v2/dags/d/dagRuns"): [{"state": "queued"}],
            ("GET", "/api/v2/dags/d/dagRuns/r9"): [{"state": "failed"}],
        }
    )
    assert main(["trigger", "d", "--url", url, "--token", "t", "--run-id", "r9", "--poll-interval", "0"]) == 1
    assert "d r9: failed" in capsys.readouterr().out


def test_unreachable_api_exits_3_in_one_line(capsys):
    argv = [
        "trigger",
        "d",
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--poll-interval",
        "0",
        "--retries",
        "0",
    ]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: --url: cannot reach http://127.0.0.1:9") and err.count("\n") == 1
    assert "(after 1 attempts)" in err


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_transient_5xx_is_retried_with_backoff(server):
    _Handler.routes.update(
        {
            ("POST", "/api/v2/dags/d/dagRuns"): [
                Status(503, {"detail": "Service Unavailable"}),
                Status(502, {"detail": "Bad Gateway"}),
                {"state": "queued"},
            ],
            ("GET", "/api/v2/dags/d/dagRuns/r1"): [Status(500, {"detail": "boom"}), {"state": "success"}],
        }
    )
    sleeps: list[float] = []
    api = AirflowRestApi(_url(server), token="t")
    assert api.run("d", "r1", {}, unpause=False, poll=_poll(sleeps)) == "success"
    assert sleeps == [2.0, 4.0, 2.0]  # doubling per call; the GET's own retry starts again at 2s
    posts = [s for s in _Handler.seen if s[:2] == ("POST", "/api/v2/dags/d/dagRuns")]
    assert len(posts) == 3


def test_backoff_doubles_up_to_its_cap():
    assert list(Retry(attempts=7, first_delay=2, max_delay=30).delays()) == [2, 4, 8, 16, 30, 30]


def test_retries_that_run_out_are_unreachable(server):
    _Handler.routes[("POST", "/api/v2/dags/d/dagRuns")] = [Status(503, {"detail": "down"})]
    with pytest.raises(Unreachable, match=r"returned 503 \(after 3 attempts\)"):
        AirflowRestApi(_url(server), token="t").run("d", "r1", {}, unpause=False, poll=_poll(attempts=3))


def test_a_rerun_for_the_same_commit_waits_on_the_existing_run(server, capsys):
    _Handler.routes.update(
        {
            ("POST", "/api/v2/dags/d/dagRuns"): [
                Status(409, {"detail": "DAG Run with dag_id 'd' and run_id 'ci__abc' already exists"})
            ],
            ("GET", "/api/v2/dags/d/dagRuns/ci__abc"): [{"state": "running"}, {"state": "success"}],
        }
    )
    argv = [
        "trigger",
        "d",
        "--url",
        _url(server),
        "--token",
        "t",
        "--run-id",
        "ci__abc",
        "--poll-interval",
        "0",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ci__abc: exists already (a re-run for the same commit); waiting on it" in out
    assert out.rstrip().endswith("d ci__abc: success")


def test_a_post_that_created_the_run_before_its_502_is_not_run_twice(server):
    """The gateway failed after Airflow created the run: the retry's 409 means waiting on it."""
    _Handler.routes.update(
        {
            ("POST", "/api/v2/dags/d/dagRuns"): [Status(502, {}), Status(409, {"detail": "exists"})],
            ("GET", "/api/v2/dags/d/dagRuns/r1"): [{"state": "failed"}],
        }
    )
    assert AirflowRestApi(_url(server), token="t").run("d", "r1", {}, unpause=False, poll=_poll()) == "failed"


def test_refused_credentials_exit_3(server, capsys):
    _Handler.routes[("POST", "/auth/token")] = [Status(401, {"detail": "Invalid credentials"})]
    assert main(["trigger", "d", "--url", _url(server), "--username", "u", "--password", "bad"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused the credentials (401: Invalid credentials)" in err


def test_a_run_that_outlasts_the_timeout_exits_2(server, capsys):
    _Handler.routes.update(
        {
            ("POST", "/api/v2/dags/d/dagRuns"): [{"state": "queued"}],
            ("GET", "/api/v2/dags/d/dagRuns/r2"): [{"state": "running"}],
        }
    )
    argv = ["trigger", "d", "--url", _url(server), "--token", "t", "--run-id", "r2", "--timeout", "0"]
    assert main(argv) == 2
    assert "d r2: timeout" in capsys.readouterr().out


def test_an_unknown_dag_is_a_refusal_in_one_line_exit_1(server, capsys):
    _Handler.routes[("POST", "/api/v2/dags/nope/dagRuns")] = [
        Status(404, {"detail": "The Dag with ID: `nope` was not found"})
    ]
    assert main(["trigger", "nope", "--url", _url(server), "--token", "t"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "returned 404: The Dag with ID: `nope` was not found" in err


def _rest_error(stub, code: str, status: int, payload: dict, params: dict | None = None) -> None:
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code=code,
        service_message="",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": status, "RestApiResponse": payload},
        expected_params=params,
    )


def test_mwaa_rest_api_retries_airflow_5xx_and_waits_on_a_taken_run_id():
    mwaa = _mwaa()
    sleeps: list[float] = []
    post = {
        "Name": ENV,
        "Path": "/dags/d/dagRuns",
        "Method": "POST",
        "Body": {"dag_run_id": "ci__1", "conf": {}},
    }
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment("2.11.0"), {"Name": ENV})
        _rest_error(stub, "RestApiServerException", 503, {"title": "Service Unavailable"}, post)
        _rest_error(stub, "RestApiClientException", 409, {"title": "Conflict", "detail": "exists"}, post)
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": {"state": "success"}},
            {"Name": ENV, "Path": "/dags/d/dagRuns/ci__1", "Method": "GET"},
        )
        assert MwaaRestApi(mwaa, ENV).run("d", "ci__1", {}, unpause=False, poll=_poll(sleeps)) == "success"
        stub.assert_no_pending_responses()
    assert sleeps == [2.0]


def test_mwaa_rest_api_errors_are_one_line():
    mwaa = _mwaa()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment("3.0.6"), {"Name": ENV})
        _rest_error(stub, "RestApiClientException", 404, {"detail": "The Dag with ID: `d` was not found"})
        with pytest.raises(StackError) as err:
            MwaaRestApi(mwaa, ENV).run("d", "r", {}, unpause=False, poll=_poll())
    assert not isinstance(err.value, Unreachable)
    assert (
        str(err.value)
        == "trigger: POST /dags/d/dagRuns on 'airflow-dl' returned 404: The Dag with ID: `d` was not found"
    )


@pytest.mark.parametrize(
    ("operation", "code", "needle"),
    [
        ("get_environment", "ResourceNotFoundException", "--mwaa-env: no MWAA environment 'airflow-dl' here"),
        ("invoke_rest_api", "AccessDeniedException", "--mwaa-env: InvokeRestApi on 'airflow-dl' was refused"),
    ],
)
def test_mwaa_access_problems_are_unreachable(operation, code, needle):
    mwaa = _mwaa()
    with Stubber(mwaa) as stub:
        if operation == "invoke_rest_api":
            stub.add_response("get_environment", _environment("3.0.6"), {"Name": ENV})
        stub.add_client_error(operation, service_error_code=code, service_message="not for you")
        with pytest.raises(Unreachable) as err:
            MwaaRestApi(mwaa, ENV).run("d", "r", {}, unpause=False, poll=_poll())
    assert str(err.value).startswith(needle) and "\n" not in str(err.value)


AIRFLOW3_LOGS = (
    "[2025-06-01T12:00:00.000+0000] {dagbag.py:588} INFO - Filling up the DagBag from /usr/local/airflow/dags\n"
    "[2025-06-01T12:00:01.000+0000] {providers_manager.py:1} WARNING - a provider warning\n"
)


def test_the_cli_token_path_reads_airflow3_output_with_log_lines(server):
    host = f"127.0.0.1:{server.server_address[1]}"
    runs = json.dumps([{"dag_id": "d", "run_id": "ci__3", "state": "success"}])
    _Handler.routes[("POST", "/aws_mwaa/cli")] = [
        {"stdout": _b64(AIRFLOW3_LOGS + "dag_id | run_id\nd      | ci__3\n"), "stderr": _b64("")},
        {"stdout": _b64(AIRFLOW3_LOGS + runs + "\n"), "stderr": _b64("")},
    ]
    mwaa = _mwaa()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment("3.0.6"), {"Name": ENV})
        for _ in range(2):
            stub.add_response(
                "create_cli_token", {"CliToken": "tok", "WebServerHostname": host}, {"Name": ENV}
            )
        assert (
            MwaaCli(mwaa, ENV, scheme="http").run("d", "ci__3", {}, unpause=False, poll=_poll()) == "success"
        )
    assert [body for _m, _p, _a, body in _Handler.seen][1] == "dags list-runs d -o json"


def test_the_cli_token_path_waits_on_a_run_that_already_exists(server):
    host = f"127.0.0.1:{server.server_address[1]}"
    exists = "airflow.exceptions.DagRunAlreadyExists: A DAG Run already exists for DAG d with run id ci__4\n"
    _Handler.routes[("POST", "/aws_mwaa/cli")] = [
        {"stdout": _b64(""), "stderr": _b64("Traceback (most recent call last):\n" + exists)},
        {"stdout": _b64(json.dumps([{"run_id": "ci__4", "state": "failed"}])), "stderr": _b64("")},
    ]
    mwaa = _mwaa()
    said: list[str] = []
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment("2.11.0"), {"Name": ENV})
        for _ in range(2):
            stub.add_response(
                "create_cli_token", {"CliToken": "tok", "WebServerHostname": host}, {"Name": ENV}
            )
        assert (
            MwaaCli(mwaa, ENV, scheme="http").run("d", "ci__4", {}, unpause=False, poll=_poll(said=said))
            == "failed"
        )
    assert "d ci__4: exists already (a re-run for the same commit); waiting on it" in said


def test_a_cli_trigger_that_failed_is_one_line(server):
    host = f"127.0.0.1:{server.server_address[1]}"
    _Handler.routes[("POST", "/aws_mwaa/cli")] = [
        {
            "stdout": _b64(AIRFLOW3_LOGS),
            "stderr": _b64(
                "Traceback (most recent call last):\n  ...\nairflow.exceptions.DagNotFound: Dag id nope not found\n"
            ),
        },
    ]
    mwaa = _mwaa()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment("3.0.6"), {"Name": ENV})
        stub.add_response("create_cli_token", {"CliToken": "tok", "WebServerHostname": host}, {"Name": ENV})
        with pytest.raises(StackError) as err:
            MwaaCli(mwaa, ENV, scheme="http").run("nope", "ci__9", {}, unpause=False, poll=_poll())
    assert str(err.value) == (
        "trigger: airflow dags trigger failed on 'airflow-dl': airflow.exceptions.DagNotFound: Dag id nope not found"
    )


def test_an_expired_cli_token_is_unreachable(server):
    host = f"127.0.0.1:{server.server_address[1]}"
    _Handler.routes[("POST", "/aws_mwaa/cli")] = [Status(403, {"message": "Forbidden"})]
    mwaa = _mwaa()
    with Stubber(mwaa) as stub:
        stub.add_response("get_environment", _environment("3.0.6"), {"Name": ENV})
        stub.add_response("create_cli_token", {"CliToken": "tok", "WebServerHostname": host}, {"Name": ENV})
        with pytest.raises(Unreachable, match=r"refused the credentials \(403"):
            MwaaCli(mwaa, ENV, scheme="http").run("d", "r", {}, unpause=False, poll=_poll())


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('[{"run_id": "a"}]', [{"run_id": "a"}]),
        (AIRFLOW3_LOGS + '[{"run_id": "a"}]\n', [{"run_id": "a"}]),
        ('\x1b[1m[{"run_id": "a"}]\x1b[0m', [{"run_id": "a"}]),
        (AIRFLOW3_LOGS + "[]\n" + AIRFLOW3_LOGS, []),
        (AIRFLOW3_LOGS, None),
        ("", None),
    ],
)
def test_json_is_found_among_log_lines(stdout, expected):
    assert json_in(stdout) == expected


def test_no_aws_credentials_exit_3(monkeypatch, tmp_path, capsys):
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["trigger", "d", "--mwaa-env", ENV, "--region", "us-east-1", "--retries", "0"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Unable to locate credentials" in err
