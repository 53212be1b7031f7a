"""``airflow-dl local up`` / ``down``: the embedded S3 server as a detached process."""

from __future__ import annotations

import contextlib
import json
import os
import time

import boto3
import pytest

from airflow_dl_provider.backends.local import server
from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.cli import main


def _s3(endpoint_url: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_CREDENTIALS["login"],
        aws_secret_access_key=LOCAL_CREDENTIALS["password"],
    )


def _reap_and_wait_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):  # gone within 5 s (reaped: it was started by this process)
        for _ in range(50):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            os.kill(pid, 0)
            time.sleep(0.1)


def test_up_status_down(tmp_path, capsys):
    home = tmp_path / "local"
    assert main(["local", "up", "--home", str(home)]) == 0
    record = server.status(home)
    assert record is not None
    out = capsys.readouterr().out
    assert f"generation {record['generation']}" in out
    conn = json.loads(out.split("AIRFLOW_CONN_AWS_DEFAULT='", 1)[1].rsplit("'", 1)[0])
    assert conn["extra"] == {
        "backend": "local",
        "endpoint_url": record["endpoint_url"],
        "region_name": "us-east-1",
        "local_home": str(home),
    }
    assert (conn["login"], conn["password"]) == (LOCAL_CREDENTIALS["login"], LOCAL_CREDENTIALS["password"])
    s3 = _s3(record["endpoint_url"])
    s3.create_bucket(Bucket="up-down-test")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["up-down-test"]
    # A second `up` reuses the running server instead of starting another.
    assert server.start(home)["pid"] == record["pid"]

    assert main(["local", "down", "--home", str(home)]) == 0
    assert f"jobs of generation {record['generation']} now report Failed" in capsys.readouterr().out
    assert server.status(home) is None
    assert server.generation(home) is None
    _reap_and_wait_gone(record["pid"])
    assert main(["local", "down", "--home", str(home)]) == 0
    assert "not running" in capsys.readouterr().out


def test_each_start_is_a_new_generation(tmp_path):
    home = tmp_path / "local"
    first = server.start(home)
    try:
        assert server.generation(home) == first["generation"]
    finally:
        server.stop(home)
    _reap_and_wait_gone(first["pid"])
    second = server.start(home)
    try:
        assert server.generation(home) == second["generation"] != first["generation"]
    finally:
        server.stop(home)
    _reap_and_wait_gone(second["pid"])


def test_a_record_whose_pid_lives_on_is_not_a_running_server(tmp_path):
    """A dead server's pid reused by another process (here: this one) does not make it look alive."""
    home = tmp_path / "local"
    home.mkdir()
    record = {"pid": os.getpid(), "port": 1, "endpoint_url": "http://127.0.0.1:1", "generation": "old"}
    (home / "server.json").write_text(json.dumps(record))
    assert server.status(home) is None
    assert server.generation(home) is None
    assert server.stop(home) is False  # and nothing was signalled: this test process is still here


def test_placeholder_credentials_are_not_masked_out_of_ordinary_log_lines():
    """Airflow masks the connection password wherever it appears; "local" would hide every mention."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    masker = SecretsMasker()
    masker.add_mask(LOCAL_CREDENTIALS["password"])
    masker.add_mask(LOCAL_CREDENTIALS["login"])
    line = "the local backend ran the job locally under ~/.airflow-dl/local"
    assert masker.redact(line) == line


def test_local_backend_refuses_a_remote_endpoint(tmp_path):
    from airflow_dl_provider.backends.local.client import LocalSageMakerClient

    with pytest.raises(ValueError, match="endpoint_url"):
        LocalSageMakerClient(
            home=tmp_path, endpoint_url="https://s3.amazonaws.com", region="us-east-1", runner_env={}
        )
