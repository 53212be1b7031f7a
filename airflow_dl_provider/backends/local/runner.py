"""The detached process that does one local job: ``python -m airflow_dl_provider.backends.local.runner DIR``.

It outlives the task that created the job, like a SageMaker job outlives its API call; SIGTERM from
``Stop*`` asks it to stop the work and record ``Stopped``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import boto3

from airflow_dl_provider.backends.local.state import LocalJob
from airflow_dl_provider.backends.local.work import JobFailure, Services
from airflow_dl_provider.backends.local.workers import worker
from airflow_dl_provider.jobs.kinds import JOB_KINDS

log = logging.getLogger("airflow_dl_provider.local.runner")


def services_from_env() -> Services:
    endpoint = os.environ["AIRFLOW_DL_ENDPOINT_URL"]
    session = boto3.session.Session(region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    return Services(
        s3=session.client("s3", endpoint_url=endpoint), logs=session.client("logs", endpoint_url=endpoint)
    )


def run(job: LocalJob, services: Services) -> None:
    kind = JOB_KINDS[job.kind]
    try:
        worker(job.kind).run(job, services)
    except Exception as err:
        if isinstance(err, JobFailure):
            reason = str(err)[:1024]
        else:
            traceback.print_exc()
            reason = f"InternalServerError: local backend: {type(err).__name__}: {err}"[:1024]
        job.transition("Failed", reason, **{kind.status_field: "Failed", "FailureReason": reason})


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    job = LocalJob(Path(argv[1]))
    services = services_from_env()
    signal.signal(signal.SIGTERM, lambda *_: services.stop.set())
    started = time.monotonic()
    run(job, services)
    log.info("job %s finished in %.1fs", job.name, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
