"""``airflow-dl local up`` / ``down``: the embedded S3 server as a detached process."""

from __future__ import annotations

import contextlib
import json
import os
import time

import boto3
import pytest

from airflow_dl_provider.backends.local import server
from airflow_dl_provider.cli import main


def test_up_status_down(tmp_path, capsys):
    home = tmp_path / "local"
    assert main(["local", "up", "--home", str(home)]) == 0
    record = server.status(home)
    assert record is not None
    out = capsys.readouterr().out
    conn = json.loads(out.split("AIRFLOW_CONN_AWS_DEFAULT='", 1)[1].rsplit("'", 1)[0])
    assert conn["extra"] == {
        "backend": "local",
        "endpoint_url": record["endpoint_url"],
        "region_name": "us-east-1",
        "local_home": str(home),
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=record["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    s3.create_bucket(Bucket="up-down-test")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["up-down-test"]
    # A second `up` reuses the running server instead of starting another.
    assert server.start(home)["pid"] == record["pid"]

    assert main(["local", "down", "--home", str(home)]) == 0
    assert server.status(home) is None
    with pytest.raises(ProcessLookupError):  # gone within 5 s (reaped: it was started by this process)
        for _ in range(50):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(record["pid"], os.WNOHANG)
            os.kill(record["pid"], 0)
            time.sleep(0.1)
    assert main(["local", "down", "--home", str(home)]) == 0
    assert "not running" in capsys.readouterr().out


def test_local_backend_refuses_a_remote_endpoint(tmp_path):
    from airflow_dl_provider.backends.local.client import LocalSageMakerClient

    with pytest.raises(ValueError, match="endpoint_url"):
        LocalSageMakerClient(
            home=tmp_path, endpoint_url="https://s3.amazonaws.com", region="us-east-1", runner_env={}
        )
