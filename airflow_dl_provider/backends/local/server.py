"""The embedded S3-compatible server (moto's, which also serves CloudWatch Logs) on 127.0.0.1.

``airflow-dl local up`` starts it detached and records it in ``<home>/server.json``; ``local down``
stops it. Its data lives in memory: stopping it forgets the buckets, as a throwaway sandbox should.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.backends.local.state import write_json_atomic

if TYPE_CHECKING:
    from pathlib import Path

REGION = "us-east-1"
# Placeholder credentials for a server on loopback; they reach nothing outside this machine.
LOCAL_CREDENTIALS = {"login": "local", "password": "local"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


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
    """The running server's record, or None (a stale record of a dead process is removed)."""
    record_path = home / "server.json"
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    try:
        os.kill(record["pid"], 0)
    except ProcessLookupError:
        record_path.unlink(missing_ok=True)
        return None
    return dict(record)


def start(home: Path, port: int | None = None) -> dict[str, Any]:
    """Start the server detached (or return the running one); wait until it answers."""
    home.mkdir(parents=True, exist_ok=True)
    running = status(home)
    if running:
        return running
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if not _ready(url, timeout=30):
        proc.kill()
        raise RuntimeError(f"the embedded S3 server did not answer on {url}; see {home / 'server.log'}")
    record = {"pid": proc.pid, "port": port, "endpoint_url": url}
    write_json_atomic(home / "server.json", record)
    return record


def stop(home: Path) -> bool:
    record = status(home)
    if record is None:
        return False
    os.kill(record["pid"], signal.SIGTERM)
    (home / "server.json").unlink(missing_ok=True)
    return True
