"""A drop-in for boto3's SageMaker client that runs jobs on this machine.

Requests are validated against botocore's service model exactly as for AWS, and so are the responses
this client returns, so code that works here sees the shapes it will see from SageMaker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import signal
import subprocess
import sys
import threading
from functools import partialmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from airflow_dl_provider.backends.local.state import JobStore, LocalJob, now_iso
from airflow_dl_provider.backends.local.workers import LOCAL_WORKERS, worker
from airflow_dl_provider.jobs.kinds import JOB_KINDS, JobKind
from airflow_dl_provider.validation.requests import output_shape, validate_request, validate_response

if TYPE_CHECKING:
    from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook

ACCOUNT_ID = "123456789012"
DEFAULT_HOME = Path.home() / ".airflow-dl" / "local"


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _kill_job_processes(runner_pid: int) -> None:
    """Kill what a dead runner left behind, as SageMaker tears down the instances of a failed job.

    The runner leads its own session, so its hosts share its process group; Linux does not reuse a
    pid while a group still carries it, so the group can only be this job's.
    """
    if runner_pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(runner_pid, signal.SIGKILL)


def _with_datetimes(shape: Any, value: Any) -> Any:
    """Turn the ISO strings of timestamp members back into datetimes, as boto3 returns them."""
    if shape is None:
        return value
    if shape.type_name == "timestamp" and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _with_datetimes(shape.members.get(k), v) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_with_datetimes(shape.member, v) for v in value]
    return value


class LocalSageMakerClient:
    """SageMaker's create/describe/stop/list calls for the job kinds the local backend can run.

    :param home: where job directories live; every process that shares it sees the same jobs.
    :param endpoint_url: the embedded S3 server (loopback only: no real account is ever touched).
    :param runner_env: environment for the runner process (endpoint, region, local credentials).
    """

    def __init__(self, *, home: Path, endpoint_url: str, region: str, runner_env: dict[str, str]) -> None:
        if not endpoint_url or not _is_loopback(endpoint_url):
            raise ValueError(
                "the local backend needs the connection extra 'endpoint_url' on 127.0.0.1 "
                f"(the embedded S3 server from 'airflow-dl local up'), got {endpoint_url!r}"
            )
        self.store = JobStore(home)
        self.endpoint_url = endpoint_url
        self.region = region
        self.runner_env = runner_env

    @classmethod
    def from_hook(cls, hook: SageMakerJobHook) -> LocalSageMakerClient:
        extra = hook.conn_config.extra_config
        endpoint = extra.get("endpoint_url") or ""
        region = hook.region_name or "us-east-1"
        creds = hook.get_credentials(region_name=region)
        env = {
            "AIRFLOW_DL_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": creds.access_key or "local",
            "AWS_SECRET_ACCESS_KEY": creds.secret_key or "local",
        }
        home = Path(extra.get("local_home") or os.environ.get("AIRFLOW_DL_LOCAL_HOME") or DEFAULT_HOME)
        return cls(home=home, endpoint_url=endpoint, region=region, runner_env=env)

    # -- generic calls, bound per kind below --------------------------------------------------------

    def _create(self, key: str, **request: Any) -> dict[str, Any]:
        kind = JOB_KINDS[key]
        validate_request(kind.create_operation, request)
        name = request[kind.name_field]
        arn = f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:{worker(key).ARN_NOUN}/{name.lower()}"
        state = {
            kind.name_field: name,
            kind.arn_field: arn,
            kind.status_field: "InProgress",
            "CreationTime": now_iso(),
            **worker(key).initial_state(request, name),
        }
        job = self.store.create(key, name, request, state)
        if job is None:
            raise _client_error(
                "ValidationException",
                f"{kind.noun} names must be unique within an AWS account and region, and a job with "
                f"this name already exists ({arn})",
                kind.create_operation,
            )
        self._start_runner(job)
        return {kind.arn_field: arn}

    def _start_runner(self, job: LocalJob) -> None:
        log = open(job.dir / "runner.log", "ab")  # noqa: SIM115 - handed to the child process
        env = {**os.environ, **self.runner_env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_dl_provider.backends.local.runner", str(job.dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a killed task must not take the job down with it
        )
        log.close()
        job.update(_pid=proc.pid)
        threading.Thread(target=proc.wait, daemon=True).start()  # reap it, no zombie left behind

    def _job(self, kind: JobKind, key: str, name: str, operation: str) -> LocalJob:
        job = self.store.get(key, name)
        if job is None:
            raise _client_error("ValidationException", "Requested resource not found.", operation)
        return job

    def _describe(self, key: str, **params: Any) -> dict[str, Any]:
        kind = JOB_KINDS[key]
        operation = f"Describe{kind.noun}"
        job = self._job(kind, key, params[kind.name_field], operation)
        state = job.state()
        if state[kind.status_field] in kind.running and not _process_alive(state.get("_pid", 0)):
            # Read again: the runner may have recorded the job's end just before it exited.
            state = job.state()
            if state[kind.status_field] == "Stopping":
                # A stop reached the runner before it could handle SIGTERM (it was still starting).
                _kill_job_processes(state.get("_pid", 0))
                job.transition("Stopped", "Training job stopped", **{kind.status_field: "Stopped"})
                state = job.state()
            elif state[kind.status_field] in kind.running:
                _kill_job_processes(state.get("_pid", 0))
                state = job.update(
                    **{
                        kind.status_field: "Failed",
                        "FailureReason": "InternalServerError: the local runner process exited before the job ended",
                    }
                )
        shape = output_shape(operation)
        merged = {**job.request(), **state}
        response = {k: _with_datetimes(shape.members[k], v) for k, v in merged.items() if k in shape.members}
        validate_response(operation, response)
        return response

    def _stop(self, key: str, **params: Any) -> dict[str, Any]:
        kind = JOB_KINDS[key]
        operation = f"Stop{kind.noun}"
        job = self._job(kind, key, params[kind.name_field], operation)
        state = job.state()
        if state[kind.status_field] != "InProgress":
            raise _client_error(
                "ValidationException",
                f"The request was rejected because the {kind.noun} is in status {state[kind.status_field]}.",
                operation,
            )
        job.update(**{kind.status_field: "Stopping"})
        job.transition("Stopping", "Stopping the job")
        with contextlib.suppress(ProcessLookupError, KeyError):
            os.kill(state["_pid"], 15)
        return {}

    def _list(self, key: str, **params: Any) -> dict[str, Any]:
        kind = JOB_KINDS[key]
        summaries = []
        for job in self.store.all(key):
            state = job.state()
            if params.get("NameContains", "") not in job.name:
                continue
            if params.get("StatusEquals") and state[kind.status_field] != params["StatusEquals"]:
                continue
            summaries.append(
                {
                    kind.name_field: job.name,
                    kind.arn_field: state[kind.arn_field],
                    "CreationTime": dt.datetime.fromisoformat(state["CreationTime"]),
                    "LastModifiedTime": dt.datetime.fromisoformat(state["LastModifiedTime"]),
                    kind.status_field: state[kind.status_field],
                }
            )
        summaries.sort(
            key=lambda s: s["CreationTime"], reverse=params.get("SortOrder", "Descending") == "Descending"
        )
        return {f"{kind.noun}Summaries": summaries[: params.get("MaxResults", 100)]}


# create_*/describe_*/stop_*/list_* for every kind the local backend runs, named as boto3 names them.
for _key in LOCAL_WORKERS:
    _kind = JOB_KINDS[_key]
    setattr(LocalSageMakerClient, _kind.create_method, partialmethod(LocalSageMakerClient._create, _key))
    setattr(LocalSageMakerClient, _kind.describe_method, partialmethod(LocalSageMakerClient._describe, _key))
    setattr(LocalSageMakerClient, _kind.stop_method, partialmethod(LocalSageMakerClient._stop, _key))
    setattr(
        LocalSageMakerClient,
        f"list_{_kind.describe_method[len('describe_') :]}s",
        partialmethod(LocalSageMakerClient._list, _key),
    )
