"""Shared fixtures: a throwaway Airflow home, the embedded S3 server, the local backend connection."""

from __future__ import annotations

import json
import os
import tempfile
import types
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

# Before anything imports Airflow: never touch the user's ~/airflow.
# `from tests.conftest import ...` runs this module a second time: reuse the first run's home.
_AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_DL_TESTS_HOME") or tempfile.mkdtemp(prefix="airflow-dl-tests-"))
os.environ["AIRFLOW_DL_TESTS_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parents[1] / "dags")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

REPO = Path(__file__).parents[1]
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The embedded S3/CloudWatch Logs server on 127.0.0.1, shared by the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class LocalBackend(types.SimpleNamespace):
    """What a test needs of the local backend: its S3 client, a fresh bucket, its job home."""

    def upload(self, key: str, body: bytes | str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return f"s3://{self.bucket}/{key}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@pytest.fixture
def local_backend(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalBackend:
    """The ``aws_default`` connection pointed at the local backend, with a bucket of its own."""
    import boto3

    from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS

    home = tmp_path / "local-home"
    extra = {
        "backend": "local",
        "endpoint_url": s3_endpoint,
        "region_name": "us-east-1",
        "local_home": str(home),
    }
    conn = {"conn_type": "aws", **LOCAL_CREDENTIALS, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_CREDENTIALS["login"],
        aws_secret_access_key=LOCAL_CREDENTIALS["password"],
    )
    bucket = f"dl-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    logs = boto3.client(
        "logs",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_CREDENTIALS["login"],
        aws_secret_access_key=LOCAL_CREDENTIALS["password"],
    )
    return LocalBackend(s3=s3, logs=logs, bucket=bucket, home=home, endpoint=s3_endpoint)


@pytest.fixture
def task_context() -> Any:
    """Build the parts of an Airflow context the job runner reads: ids, run_id and xcom_push."""

    def make(
        run_id: str = "manual__1", *, dag_id: str = "dl_test", task_id: str = "train", map_index: int = -1
    ):
        pushed: dict[str, Any] = {}
        ti = types.SimpleNamespace(
            dag_id=dag_id,
            task_id=task_id,
            map_index=map_index,
            xcom_push=lambda key, value, **_: pushed.__setitem__(key, value),  # 2.11 adds execution_date
            pushed=pushed,
        )
        return {"ti": ti, "run_id": run_id}

    return make


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata database in the throwaway Airflow home, for ``dag.test()``."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


class TaskLog:
    """What operators logged during a test: stdlib records (Airflow 2) and structlog events (Airflow 3)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.events: list[dict[str, Any]] = []

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records] + [str(e.get("event", "")) for e in self.events]

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


@pytest.fixture
def task_log(caplog: pytest.LogCaptureFixture) -> Iterator[TaskLog]:
    """Capture the task log: ``op.log`` is structlog on Airflow 3 (which caplog cannot see), stdlib on 2."""
    import logging

    caplog.set_level(logging.INFO)
    log = TaskLog(caplog)
    try:
        from structlog.testing import capture_logs
    except ImportError:  # pragma: no cover - Airflow 2 without structlog
        yield log
        return
    with capture_logs() as events:
        log.events = events
        yield log
