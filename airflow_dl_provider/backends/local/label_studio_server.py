"""A real Label Studio server on 127.0.0.1, from its own venv, and the simulated workforce beside it.

Label Studio's pins (Django 5.2, numpy 2.2, ...) differ from Airflow's, so it lives in a venv of its
own, ``.venv-label-studio`` (``make label-studio`` builds it once, with a migrated template data
directory so that a start skips the two minutes of database migrations), or wherever
``AIRFLOW_DL_LABEL_STUDIO_VENV`` points. ``airflow-dl local up --label-studio`` and the demo start it
with :func:`start`; ``local down`` stops it with :func:`stop`, which, like the embedded S3 server's
stop, throws its data away: its tasks point at objects that went with the S3 server.

Run as on a laptop: ``label-studio start --no-browser --internal-host 127.0.0.1``, an administrator
created non-interactively (``--username``, ``--password``, ``--user-token`` with legacy tokens
enabled for the organization, ``--enable-legacy-api-token``), sign-up without an invite link
disabled (``LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK``), and SSRF protection off, since the S3
storage endpoint is the embedded server on loopback, which Label Studio refuses otherwise
(:data:`airflow_dl_provider.label_studio.behaviour.SSRF_REFUSAL`).

The server and the workforce each prove they are alive by holding a lock (:mod:`.processes`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airflow_dl_provider.backends.local.processes import answers, free_port, lock_held, spawn_holding_lock
from airflow_dl_provider.backends.local.state import now_iso, write_json_atomic

VENV_ENV = "AIRFLOW_DL_LABEL_STUDIO_VENV"
DEFAULT_VENV = Path(__file__).resolve().parents[3] / ".venv-label-studio"
# Made by `make label-studio`: a data directory whose database is migrated and has the administrator.
TEMPLATE = "airflow-dl-template"
RECORD, LOCK, WORKFORCE_LOCK = "label-studio.json", "label-studio.lock", "label-studio-workforce.lock"
DATA = "label-studio"
# Placeholders for a server on loopback that holds only throwaway data; not common words, since
# Airflow's secret masker hides a connection's password wherever it appears in a log.
ADMIN_EMAIL = "admin@airflow-dl.local"
ADMIN_PASSWORD = "airflow-dl-local-label-studio-password"
LOCAL_TOKEN = "airflowdllocallabelstudiotoken0000000000"
START_TIMEOUT_SECONDS = 300.0
STOP_GRACE_SECONDS = 10.0


def venv() -> Path:
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def executable() -> Path | None:
    """The ``label-studio`` command of the venv, or None when the venv is not built."""
    path = venv() / "bin" / "label-studio"
    return path if path.exists() else None


def missing_reason() -> str:
    return (
        f"Label Studio is not installed in {venv()}; build it with 'make label-studio' "
        f"(or point {VENV_ENV} at a venv with label-studio installed)"
    )


def _flags(data_dir: Path) -> list[str]:
    """The data directory and the administrator, created non-interactively; legacy tokens enabled."""
    return [
        "--data-dir",
        str(data_dir),
        "--username",
        ADMIN_EMAIL,
        "--password",
        ADMIN_PASSWORD,
        "--user-token",
        LOCAL_TOKEN,
        "--enable-legacy-api-token",
    ]


def _command() -> str:
    command = executable()
    if command is None:
        raise RuntimeError(missing_reason())
    return str(command)


def server_command(port: int, data_dir: Path) -> list[str]:
    return [
        _command(),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        *_flags(data_dir),
        "--log-level",
        "WARNING",
    ]


def server_env(data_dir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    return {
        **keep,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "SSRF_PROTECTION_ENABLED": "false",
        # By default it asks PyPI for a newer release, reports errors to Sentry and sends usage
        # analytics; a local sandbox calls nothing outside this machine.
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
    }


def _ready(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    return answers(f"{url}/health", timeout, proc=proc, every=0.5)


def status(home: Path) -> dict[str, Any] | None:
    """The running server's record, or None. Reads only."""
    path = home / RECORD
    if not path.exists() or not lock_held(home / LOCK):
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def connection_uri_json(record: dict[str, Any]) -> str:
    """The ``AIRFLOW_CONN_LABEL_STUDIO_DEFAULT`` value for the local server."""
    return json.dumps({"conn_type": "label_studio", "host": record["url"], "password": record["token"]})


def _spawn(command: list[str], env: dict[str, str], log: Path, lock: Path) -> subprocess.Popen[bytes]:
    return spawn_holding_lock(command, lock, log, env=env)


def start(home: Path, s3_endpoint: str, *, port: int | None = None) -> dict[str, Any]:
    """Start the server and the simulated workforce (or return the running ones); wait for the server.

    :param s3_endpoint: the embedded S3 server, where the workforce reads each project's hidden truth.
    """
    home.mkdir(parents=True, exist_ok=True)
    running = status(home)
    if running:
        return running
    (home / RECORD).unlink(missing_ok=True)
    data_dir = home / DATA
    template = venv() / TEMPLATE
    if not data_dir.exists() and template.is_dir():
        shutil.copytree(template, data_dir)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        proc = _spawn(
            server_command(port, data_dir), server_env(data_dir), home / "label-studio.log", home / LOCK
        )
    except BlockingIOError:
        raise RuntimeError(f"another 'airflow-dl local up' is starting Label Studio in {home}") from None
    if not _ready(url, START_TIMEOUT_SECONDS, proc):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError(f"Label Studio did not answer on {url}; see {home / 'label-studio.log'}")
    workforce = _spawn(
        [
            sys.executable,
            "-m",
            "airflow_dl_provider.backends.local.label_studio_workforce",
            "--url",
            url,
            "--s3-endpoint",
            s3_endpoint,
        ],
        {**os.environ, "AIRFLOW_DL_LABEL_STUDIO_TOKEN": LOCAL_TOKEN, "PYTHONUNBUFFERED": "1"},
        home / "label-studio-workforce.log",
        home / WORKFORCE_LOCK,
    )
    record = {
        "pid": proc.pid,
        "workforce_pid": workforce.pid,
        "port": port,
        "url": url,
        "token": LOCAL_TOKEN,
        "s3_endpoint": s3_endpoint,
        "started": now_iso(),
    }
    write_json_atomic(home / RECORD, record)
    return record


def _stop_group(pid: int, lock: Path) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while lock_held(lock) and time.monotonic() < deadline:
        time.sleep(0.1)
    if lock_held(lock):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def stop(home: Path) -> bool:
    """Stop the workforce and the server, and remove the server's data; False if none runs."""
    record = status(home)
    if record is None:
        return False
    # Their locks are held, so the recorded pids are still theirs and not a stranger's.
    if lock_held(home / WORKFORCE_LOCK):
        _stop_group(int(record["workforce_pid"]), home / WORKFORCE_LOCK)
    _stop_group(int(record["pid"]), home / LOCK)
    (home / RECORD).unlink(missing_ok=True)
    shutil.rmtree(home / DATA, ignore_errors=True)
    return True


def build_template() -> Path:
    """Migrate a data directory once and create the administrator in it (``make label-studio`` runs this).

    Each :func:`start` copies it, so a start skips the migrations (about two minutes on two cores).
    """
    template = venv() / TEMPLATE
    shutil.rmtree(template, ignore_errors=True)
    subprocess.run(
        [_command(), "init", "--quiet", *_flags(template)],
        env=server_env(template),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return template


if __name__ == "__main__":
    if sys.argv[1:] != ["template"]:
        sys.exit("usage: python -m airflow_dl_provider.backends.local.label_studio_server template")
    started = time.monotonic()
    print(f"migrated Label Studio template data in {build_template()} ({time.monotonic() - started:.0f} s)")
