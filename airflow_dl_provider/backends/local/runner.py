"""The detached process that does one local job: ``python -m airflow_dl_provider.backends.local.runner DIR FD``.

It outlives the task that created the job, like a SageMaker job outlives its API call. ``FD`` is the
job's ``runner.lock``, locked by the creator and inherited: holding it for its whole life is how the
runner says it is alive (:mod:`.processes`). Nobody signals it: Stop records ``Stopping`` in the
job's state and the runner, watching the state, stops the work and records ``Stopped``. Its hosts
die with it (the kernel kills them if it is killed), so a dead runner leaves nothing running.

It gives the job's worker (:mod:`.workers`) a :class:`~.work.Services` built from the job's own
record: the home, server and region its creator wrote into the state. Nothing comes from this
process's environment, which a runner inherits from whichever process created the job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import cast

import boto3

from airflow_dl_provider.backends.local import server
from airflow_dl_provider.backends.local.client import LocalSageMakerClient
from airflow_dl_provider.backends.local.processes import hold_lock, holds_lock
from airflow_dl_provider.backends.local.resources import ResourceStore
from airflow_dl_provider.backends.local.state import RUNNER_LOCK, LocalJob, StatusConflict, now_iso
from airflow_dl_provider.backends.local.work import JobFailure, JobOrigin, Services, TrainingJobs
from airflow_dl_provider.backends.local.workers import worker
from airflow_dl_provider.exceptions import DLProviderError
from airflow_dl_provider.jobs.kinds import JOB_KINDS

log = logging.getLogger("airflow_dl_provider.local.runner")
STOP_POLL_SECONDS = 0.25


def services_for(job: LocalJob) -> Services:
    """The job's services, built from its own record (:class:`~.work.JobOrigin`), never the environment.

    The S3 and Logs clients use the placeholder keys: the embedded server on loopback takes any key,
    and a runner must not reach for the AWS credential chain. Sub-jobs (tuning trials) are created
    through a client on the same home and server; their runners inherit this one's environment.

    :raises JobFailure: the record says nothing of where the job runs, or the S3 server the job was
        created against is gone (its inputs went with it), as Describe would report it.
    """
    origin = JobOrigin.of(job.state())
    running = server.generation(origin.home)
    if origin.generation != running:
        raise JobFailure(
            f"InternalServerError: the local S3 server the job was created on (generation "
            f"{origin.generation or 'none'}) is not the one running now ({running or 'none'}); its inputs are gone"
        )
    session = boto3.session.Session(
        aws_access_key_id=server.LOCAL_CREDENTIALS["login"],
        aws_secret_access_key=server.LOCAL_CREDENTIALS["password"],
        region_name=origin.region,
    )
    client = LocalSageMakerClient(
        home=origin.home, endpoint_url=origin.endpoint_url, region=origin.region, runner_env={}
    )
    return Services(
        origin=origin,
        store=client.store,
        resources=ResourceStore(origin.home),
        # Its create/describe/stop calls are bound per kind when client.py is imported: mypy cannot see them.
        client=cast("TrainingJobs", client),
        s3=session.client("s3", endpoint_url=origin.endpoint_url),
        logs=session.client("logs", endpoint_url=origin.endpoint_url),
    )


def _failed(job: LocalJob, err: Exception) -> None:
    """Record the job Failed with the reason SageMaker would give (capped at 1024 characters)."""
    if isinstance(err, JobFailure):
        reason = str(err)[:1024]
    elif isinstance(err, DLProviderError):  # our one-line errors name the request field: the caller's
        reason = f"ClientError: {err}"[:1024]
    else:
        traceback.print_exception(err)
        reason = f"InternalServerError: local backend: {type(err).__name__}: {err}"[:1024]
    with contextlib.suppress(StatusConflict):
        job.transition("Failed", reason, **{job.status_field: "Failed", "FailureReason": reason})


def _stopped(job: LocalJob) -> None:
    noun = JOB_KINDS[job.kind].noun
    with contextlib.suppress(StatusConflict):  # already ended: nothing to add
        job.transition_if({"Stopping"}, "Stopped", f"{noun} stopped", **{job.status_field: "Stopped"})


def run(job: LocalJob, services: Services) -> None:
    """Run the job's worker and record how it ended; a stop accepted before the end wins."""
    if job.status() == "Stopping":  # stopped before this process got going
        _stopped(job)
        return
    try:
        worker(job.kind).run(job, services)
    except StatusConflict as conflict:
        # The worker tried to record its end after Stop was accepted: the job ends Stopped.
        if conflict.current == "Stopping":
            _stopped(job)
    except Exception as err:
        _failed(job, err)


def watch_for_stop(job: LocalJob, stop: threading.Event) -> None:
    """Set ``stop`` once Stop has recorded ``Stopping`` in the job's state."""
    while not stop.wait(STOP_POLL_SECONDS):
        with contextlib.suppress(OSError, ValueError):  # a state file being replaced: read it next time
            if job.status() == "Stopping":
                stop.set()


def _hold_runner_lock(job: LocalJob, fd: int | None) -> int:
    """The lock that says this runner is alive: the creator's, inherited; or taken here when run by hand."""
    path = job.dir / RUNNER_LOCK
    if fd is not None and holds_lock(fd, path):
        return fd
    return hold_lock(path)  # BlockingIOError: another runner has this job


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    job = LocalJob(Path(argv[1]))
    try:
        _hold_runner_lock(job, int(argv[2]) if len(argv) > 2 else None)
    except BlockingIOError:
        log.error("job %s already has a live runner; this one exits", job.name)
        return 1
    job.update(_runner_pid=os.getpid(), _runner_started=now_iso())  # for people reading state.json
    try:
        services = services_for(job)
    except Exception as err:  # the job's end, recorded as the worker's own errors are
        _failed(job, err)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: services.stop.set())
    threading.Thread(target=watch_for_stop, args=(job, services.stop), daemon=True).start()
    started = time.monotonic()
    run(job, services)
    log.info("job %s finished in %.1fs", job.name, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
