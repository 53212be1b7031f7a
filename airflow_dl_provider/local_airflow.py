"""``airflow-dl local airflow``: Airflow on localhost with the DAGs wired to the local backend.

``airflow standalone`` starts its components (scheduler, DAG processor, api-server, triggerer) as
``airflow ...`` from ``PATH``, so the venv's ``bin`` is put first on the children's ``PATH``: a venv
that was never activated works. Standalone runs in a session of its own, and on Ctrl-C (or SIGTERM)
everything in that session is stopped: standalone first gets the SIGINT it handles, then whatever
is left (components, executor workers, task processes: Airflow's task supervisor moves a task into
its own process group, never out of the session) gets SIGTERM, then SIGKILL. Local jobs still
running are stopped through the backend's Stop calls, endpoints deleted, and the embedded S3 server,
if this command started it, is stopped last.

The drift monitor gets data to read: the shifted batch and its labeled copy that ``airflow-dl demo``
writes are seeded with the digits, so running ``dl_pipeline_digits`` (which registers the champion
and its drift baseline) and then ``dl_drift_monitor_digits`` runs the demo's closed loop from the UI.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

ADMIN = "admin"
# How long each step of the stop waits before the next, harder one.
STANDALONE_GRACE_SECONDS = 20.0
TERM_GRACE_SECONDS = 10.0
JOB_STOP_SECONDS = 15.0
READY_TIMEOUT_SECONDS = 600.0
LOCAL_PARALLELISM = max(4, 2 * (os.cpu_count() or 2))


def _say(message: str) -> None:
    print(f"airflow-dl | {message}", flush=True)


def venv_bin() -> Path:
    """The folder of this interpreter's ``airflow`` script: the venv's ``bin``, activated or not."""
    folder = Path(sys.executable).parent
    if not (folder / "airflow").exists():
        raise SystemExit(
            f"local airflow: no 'airflow' next to {sys.executable}; install the provider into that venv (make venv)"
        )
    return folder


def admin_password(airflow_home: Path) -> str:
    """The admin password of Airflow's simple auth manager, kept in its own passwords file.

    Written here on the first start (standalone would print a generated one only once, on the run
    that made it), read back on later starts, so every start can print the login.
    """
    path = airflow_home / "simple_auth_manager_passwords.json.generated"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        password = json.loads(path.read_text()).get(ADMIN)
        if password:
            return str(password)
    password = secrets.token_urlsafe(12)
    airflow_home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({ADMIN: password}))
    path.chmod(0o600)
    return password


def seed_demo_data(endpoint_url: str, dags_folder: Path) -> list[str]:
    """The demo's data for ``configs/digits.yaml``: images, hidden truth, and the shifted batch the drift
    monitor reads (with its labeled copy for retraining). Returns what was written, for the banner."""
    from airflow_dl_provider.backends.local import server
    from airflow_dl_provider.demo import seed_digits, seed_digits_truth, shifted_batch
    from airflow_dl_provider.pipelines.config import load_config

    config_path = dags_folder / "configs" / "digits.yaml"
    if not config_path.exists():
        return []
    config = load_config(config_path)
    s3 = server.s3_client(endpoint_url)
    seeded = seed_digits(s3, config.bucket, config.prefix)
    written = [f"{seeded['images']} digit images and {seeded['csv']}"]
    written.append(f"the labeling truth {seed_digits_truth(s3, config.bucket, config.prefix)}")
    features, labeled = shifted_batch()
    batches = []
    if config.drift and config.drift.data_uri:
        # Without data_uri the monitor watches the endpoint's capture: requests to it are its data.
        batches.append((config.drift.data_uri, features))
    if config.retraining:
        batches.append((config.retraining.labeled_data_prefix, labeled))
    for prefix_uri, body in batches:
        bucket, _, prefix = prefix_uri.removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/batch-1.csv"
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        written.append(f"the shifted batch s3://{bucket}/{key}")
    return written


def session_members(session_id: int) -> list[int]:
    """The live processes of a session (``getsid``), zombies left out."""
    import psutil

    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == session_id and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_empty(session_id: int, leader: subprocess.Popen[bytes], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        leader.poll()  # reap the leader, or it stays a zombie member
        left = session_members(session_id)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


def stop_session(leader: subprocess.Popen[bytes]) -> int:
    """Stop every process of the leader's session; return how many needed more than the leader's SIGINT."""
    session_id = leader.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(leader.pid, signal.SIGINT)  # standalone's own shutdown: it terminates its components
    left = _wait_empty(session_id, leader, STANDALONE_GRACE_SECONDS)
    stragglers = len(left)
    if left:
        _signal_all(left, signal.SIGTERM)
        left = _wait_empty(session_id, leader, TERM_GRACE_SECONDS)
    if left:
        _signal_all(left, signal.SIGKILL)
        _wait_empty(session_id, leader, TERM_GRACE_SECONDS)
    with contextlib.suppress(subprocess.TimeoutExpired):
        leader.wait(timeout=TERM_GRACE_SECONDS)
    return stragglers


def stop_local_work(local_home: Path, endpoint_url: str) -> list[str]:
    """Stop the local jobs still running and delete the endpoints, with the backend's own calls."""
    from botocore.exceptions import ClientError

    from airflow_dl_provider.backends.local.client import LocalSageMakerClient
    from airflow_dl_provider.backends.local.resources import ResourceStore
    from airflow_dl_provider.backends.local.state import JobStore
    from airflow_dl_provider.backends.local.workers import LOCAL_WORKERS
    from airflow_dl_provider.jobs.kinds import JOB_KINDS

    client = LocalSageMakerClient(
        home=local_home, endpoint_url=endpoint_url, region="us-east-1", runner_env={}
    )
    store, stopped = JobStore(local_home), []
    running = []
    for key in LOCAL_WORKERS:
        kind = JOB_KINDS[key]
        for job in store.all(key):
            if not job.runner_alive():
                continue
            with contextlib.suppress(ClientError):  # it ended meanwhile
                getattr(client, kind.stop_method)(**{kind.name_field: job.name})
                stopped.append(f"{key} job {job.name}")
            running.append(job)
    for record in ResourceStore(local_home).all("endpoint"):
        with contextlib.suppress(ClientError):
            client.delete_endpoint(EndpointName=record["EndpointName"])
            stopped.append(f"endpoint {record['EndpointName']}")
    deadline = time.monotonic() + JOB_STOP_SECONDS
    while any(job.runner_alive() for job in running) and time.monotonic() < deadline:
        time.sleep(0.2)
    return stopped


def _announce_when_ready(url: str, password: str, done: threading.Event) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not done.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                break
        except OSError:
            done.wait(1.0)
    else:
        return
    _say(f"Airflow is up on {url}: log in as {ADMIN} with password {password}")
    _say(f"the pipelines' page: {url}/plugin/deep-learning (Browse > Deep learning); Ctrl-C stops everything")


class _Stop(Exception):
    """SIGTERM, handled as Ctrl-C is."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop(signum)


def run(
    home: Path, dags_folder: Path, port: int, connection: Callable[[str], str], base_env: dict[str, str]
) -> int:
    """Start the S3 server (unless it runs), seed the demo data, run standalone until Ctrl-C, stop it all.

    :param connection: the ``AIRFLOW_CONN_AWS_DEFAULT`` value for the embedded server's URL.
    :param base_env: the Airflow environment (home, DAGs folder) the components run with.
    """
    from airflow_dl_provider.backends.local import server

    airflow_bin = venv_bin()
    started_server = server.status(home) is None
    record = server.start(home)
    try:
        for line in seed_demo_data(record["endpoint_url"], dags_folder):
            _say(f"seeded {line}")
        airflow_home = Path(base_env["AIRFLOW_HOME"])
        password = admin_password(airflow_home)
        env = {
            **base_env,
            "PATH": os.pathsep.join([str(airflow_bin), base_env.get("PATH", os.defpath)]),
            "AIRFLOW_CONN_AWS_DEFAULT": connection(record["endpoint_url"]),
            "AIRFLOW__API__PORT": str(port),
            # Workers reach the api-server here; by default they assume port 8080, whatever it is.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
            # The LocalExecutor starts one worker per slot (32 by default): a laptop needs a few.
            "AIRFLOW__CORE__PARALLELISM": base_env.get("AIRFLOW__CORE__PARALLELISM", str(LOCAL_PARALLELISM)),
            # Test Connection is off by default; the provider's connection type tests both backends.
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        }
        url = f"http://localhost:{port}"
        _say(
            f"embedded S3 on {record['endpoint_url']}; Airflow home {airflow_home}; starting Airflow on {url} ..."
        )
        return _run_standalone(airflow_bin, env, url, password, home, record["endpoint_url"])
    finally:
        if started_server:
            server.stop(home)
            _say("stopped the embedded S3 server")


def _run_standalone(
    airflow_bin: Path, env: dict[str, str], url: str, password: str, home: Path, endpoint_url: str
) -> int:
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    # A shell's background job starts with SIGINT ignored, and Python then never turns it into
    # KeyboardInterrupt: make Ctrl-C (and `kill -INT`) stop everything wherever this was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    done = threading.Event()
    leader = subprocess.Popen([str(airflow_bin / "airflow"), "standalone"], env=env, start_new_session=True)
    threading.Thread(target=_announce_when_ready, args=(url, password, done), daemon=True).start()
    code = 0
    try:
        code = leader.wait()
        _say(f"airflow standalone exited with {code}")
    except (KeyboardInterrupt, _Stop):
        _say("stopping Airflow and everything it started ...")
    finally:
        done.set()
        # Ctrl-C again must not interrupt the stop halfway and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stragglers = stop_session(leader)
            if stragglers:
                _say(f"{stragglers} process(es) outlived standalone's own shutdown; terminated")
            for what in stop_local_work(home, endpoint_url):
                _say(f"stopped {what}")
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return code
