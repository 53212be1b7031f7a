"""The embedded S3-compatible server (moto's, which also serves CloudWatch Logs) on 127.0.0.1.

``airflow-dl local up`` starts it detached and records it in ``<home>/server.json``; ``local down``
stops it. Its data lives in memory: stopping it forgets the buckets, as a throwaway sandbox should.
Each start gets a new *generation*; local jobs record the generation they ran against, and one from
an older generation is reported Failed, since its artifacts went with the server that held them.

The server is alive exactly while ``<home>/server.lock`` is locked: the lock is taken here and
inherited by the server process, which holds it until it dies (:mod:`.processes`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.backends.local.processes import answers, free_port, lock_held, spawn_holding_lock
from airflow_dl_provider.backends.local.state import now_iso, write_json_atomic

if TYPE_CHECKING:
    from pathlib import Path

REGION = "us-east-1"
# Placeholder credentials for a server on loopback; they reach nothing outside this machine. Not a
# common word: Airflow's secret masker hides the connection password wherever it appears in a log.
LOCAL_CREDENTIALS = {"login": "airflow-dl-local-key-id", "password": "airflow-dl-local-key-secret"}
SERVER_LOCK = "server.lock"
STOP_GRACE_SECONDS = 5.0


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for the embedded server, with the placeholder credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["login"],
        aws_secret_access_key=LOCAL_CREDENTIALS["password"],
    )


def connection_uri_json(endpoint_url: str, home: Path) -> str:
    """The ``AIRFLOW_CONN_AWS_DEFAULT`` value that points every DAG at the local backend."""
    extra = {"backend": "local", "endpoint_url": endpoint_url, "region_name": REGION, "local_home": str(home)}
    return json.dumps({"conn_type": "aws", **LOCAL_CREDENTIALS, "extra": extra})


def status(home: Path) -> dict[str, Any] | None:
    """The running server's record, or None. Reads only: no signal, no write."""
    record_path = home / "server.json"
    if not record_path.exists() or not lock_held(home / SERVER_LOCK):
        return None
    try:
        return dict(json.loads(record_path.read_text()))
    except (OSError, ValueError):
        return None  # a server that is starting has not written its record yet


def generation(home: Path) -> str | None:
    """The running server's generation, or None when none runs (its data, if it had any, is gone)."""
    record = status(home)
    return str(record["generation"]) if record and record.get("generation") else None


def start(home: Path, port: int | None = None) -> dict[str, Any]:
    """Start the server detached (or return the running one); wait until it answers."""
    home.mkdir(parents=True, exist_ok=True)
    running = status(home)
    if running:
        return running
    # A dead server's record must not lend its generation to the new server while it starts.
    (home / "server.json").unlink(missing_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        proc = spawn_holding_lock(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            home / SERVER_LOCK,
            home / "server.log",
        )
    except BlockingIOError:
        raise RuntimeError(f"another 'airflow-dl local up' is starting the server in {home}") from None
    if not answers(f"{url}/moto-api/", timeout=30):
        proc.kill()
        raise RuntimeError(f"the embedded S3 server did not answer on {url}; see {home / 'server.log'}")
    record = {
        "pid": proc.pid,
        "port": port,
        "endpoint_url": url,
        "generation": uuid.uuid4().hex[:12],
        "started": now_iso(),
    }
    write_json_atomic(home / "server.json", record)
    return record


def stop(home: Path) -> bool:
    """Stop the running server (SIGTERM, then SIGKILL after a grace period); False if none runs."""
    record = status(home)
    if record is None:
        return False
    # Its lock is held, so the recorded pid is still the server's and not a stranger's.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record["pid"], signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while lock_held(home / SERVER_LOCK) and time.monotonic() < deadline:
        time.sleep(0.05)
    if lock_held(home / SERVER_LOCK):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record["pid"], signal.SIGKILL)
    (home / "server.json").unlink(missing_ok=True)
    return True
