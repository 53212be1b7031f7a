"""airflow-dl trigger: MWAA InvokeRestApi and CLI token (Stubber), and an Airflow 3 REST API on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import Stubber

from airflow_dl_provider.cli import main
from airflow_dl_provider.stacks.trigger import AirflowRestApi, MwaaCli, MwaaRestApi, Poll

ENV = "airflow-dl"


def _poll() -> Poll:
    return Poll(interval=0, timeout=60, sleep=lambda _s: None, say=lambda _m: None)


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
        data = json.dumps(payload).encode()
        self.send_response(200)
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
        {"stdout": _b64("triggered"), "stderr": ""},
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


def test_unreachable_api_is_one_line(capsys):
    assert main(["trigger", "d", "--url", "http://127.0.0.1:9", "--token", "t", "--poll-interval", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --url: cannot reach") and err.count("\n") == 1
