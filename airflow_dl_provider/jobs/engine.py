"""Start-or-reattach, wait, stop: written once for every job kind.

The engine talks to a client with the SageMaker API's method names (boto3's, or the local backend's
drop-in client) and knows a job kind only through its :class:`~.kinds.JobKind` row.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.logs import JobLogStreamer, LogCursor
from airflow_dl_provider.jobs.naming import IF_EXISTS_CHOICES, IfExists, deterministic_job_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_dl_provider.jobs.kinds import JobKind


# Enough follow-up jobs for any sane retry policy; past this something is wrong, so say so.
MAX_ATTEMPTS = 50
# How long past the job's own limit we keep waiting: provisioning p3dn capacity and uploading
# the model are not counted in MaxRuntimeInSeconds.
WAIT_SLACK_SECONDS = 3600


@dataclass
class JobHandle:
    """The job a task is attached to.

    :param created: True when this call created it, False when it reattached to an earlier one.
    """

    name: str
    arn: str
    created: bool
    description: dict[str, Any] = field(repr=False, default_factory=dict)


class JobEngine:
    """Run jobs of one kind through ``client``.

    :param kind: the job kind's table row.
    :param client: an object with the kind's ``create_*``, ``describe_*`` and ``stop_*`` methods.
    :param logs_client: a CloudWatch Logs client; None disables log copying.
    """

    def __init__(
        self,
        kind: JobKind,
        client: Any,
        *,
        logs_client: Any = None,
        log: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.client = client
        self.logs_client = logs_client
        self.log = log or logging.getLogger(__name__)
        self._sleep = sleep
        self._clock = clock

    def describe(self, name: str) -> dict[str, Any] | None:
        """The job's description, or None when no job has that name (as the service says it, per API)."""
        try:
            return dict(getattr(self.client, self.kind.describe_method)(**{self.kind.name_field: name}))
        except ClientError as err:
            if service_behaviour.is_not_found(self.kind.describe_operation, err):
                return None
            raise

    def ensure(
        self,
        request: Mapping[str, Any],
        *,
        dag_id: str,
        task_id: str,
        run_id: str,
        map_index: int = -1,
        prefix: str | None = None,
        if_exists: IfExists = "reattach",
    ) -> JobHandle:
        """Create the task instance's job, or attach to the one an earlier try started.

        Attempt names are tried in order. ``reattach``: the first that is running or completed is
        returned; failed and stopped ones are passed over; the first free name is created. ``fail``:
        any existing job is an error. ``new``: always create, on the first free name.
        """
        if if_exists not in IF_EXISTS_CHOICES:
            raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS_CHOICES)}, got {if_exists!r}")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            name = deterministic_job_name(
                dag_id,
                task_id,
                run_id,
                map_index,
                max_length=self.kind.max_name_length,
                prefix=prefix,
                attempt=attempt,
            )
            description = self.describe(name)
            if description is None:
                return self._create(name, request)
            status = description[self.kind.status_field]
            if if_exists == "fail":
                raise SageMakerJobError(
                    f"{self.kind.noun} {name} already exists ({status}); set if_exists='reattach' to use it",
                    job_name=name,
                    status=status,
                )
            if if_exists == "reattach" and status not in self.kind.failed:
                verb = "waiting on running" if status in self.kind.running else "reusing finished"
                self.log.info(
                    "Reattached: %s %s %s (%s), no new job started", verb, self.kind.noun, name, status
                )
                return JobHandle(name, description[self.kind.arn_field], False, description)
            self.log.info("%s %s ended %s; trying the next attempt name", self.kind.noun, name, status)
        raise SageMakerJobError(
            f"{MAX_ATTEMPTS} attempts of this task's {self.kind.noun} exist; stopping here"
        )

    def _create(self, name: str, request: Mapping[str, Any]) -> JobHandle:
        body = {**request, self.kind.name_field: name}
        self.log.info("Creating %s %s", self.kind.noun, name)
        response = getattr(self.client, self.kind.create_method)(**body)
        return JobHandle(name, response.get(self.kind.arn_field, ""), True)

    def default_max_wait(self, request: Mapping[str, Any]) -> float | None:
        """The job's own time limit plus slack; None (no cap) when the request sets none."""
        limit = self.kind.max_seconds(request)
        return None if not limit else float(limit) + WAIT_SLACK_SECONDS

    def wait(
        self,
        name: str,
        *,
        poll_interval: float = 30.0,
        max_wait: float | None = None,
        log_cursor: LogCursor | None = None,
    ) -> dict[str, Any]:
        """Poll until the job ends, copying its log lines; return its description if it succeeded.

        Polls start fast and back off with jitter up to ``poll_interval``, so a short local job is seen
        to end quickly and a long cluster job is not polled into throttling. A poll the service throttles
        past botocore's own retries is tried again later: the job runs (and bills) on, and failing the
        task would only make its retry reattach.

        :raises SageMakerJobError: the job failed or was stopped, or ``max_wait`` passed (the job is
            then stopped: nobody is waiting for it any more).
        """
        cursor: LogCursor = log_cursor if log_cursor is not None else {}
        streamer = self._streamer(name)
        deadline = None if max_wait is None else self._clock() + max_wait
        delay = min(1.0, poll_interval)
        last_status = None
        throttled = 0
        while True:
            try:
                description = self.describe(name)
            except ClientError as err:
                if not service_behaviour.is_throttling(err) or (
                    deadline is not None and self._clock() >= deadline
                ):
                    raise
                throttled += 1
                log = self.log.warning if throttled == 1 else self.log.debug
                log("Describe%s %s throttled (%s); polling again later", self.kind.noun, name, err)
                self._sleep(poll_interval * random.uniform(0.8, 1.2))
                delay = poll_interval
                continue
            if description is None:
                raise SageMakerJobError(f"{self.kind.noun} {name} does not exist", job_name=name)
            status = description[self.kind.status_field]
            if status != last_status:
                self.log.info("%s %s: %s", self.kind.noun, name, status)
                last_status = status
            if streamer:
                streamer.copy_new_lines(cursor)
            if status in self.kind.terminal:
                return self.check(description)
            if deadline is not None and self._clock() >= deadline:
                self.stop(name)
                raise SageMakerJobError(
                    f"{self.kind.noun} {name} still {status} after max_wait={max_wait:.0f}s; stopped it",
                    job_name=name,
                    status=status,
                )
            self._sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 1.5, poll_interval)

    def copy_logs(self, name: str, cursor: LogCursor) -> None:
        streamer = self._streamer(name)
        if streamer:
            streamer.copy_new_lines(cursor)

    def _streamer(self, name: str) -> JobLogStreamer | None:
        if self.logs_client is None or not self.kind.log_group:
            return None
        return JobLogStreamer(self.logs_client, self.kind.key, name, self.log)

    def check(self, description: Mapping[str, Any]) -> dict[str, Any]:
        """Return the description of a succeeded job; raise with its FailureReason otherwise.

        A job the service stopped at a limit of the request says so first (``MaxRuntimeExceeded: ...``):
        it was not stopped by anyone, and the fix is in the request.
        """
        name = description[self.kind.name_field]
        status = description[self.kind.status_field]
        if status in self.kind.succeeded:
            return dict(description)
        reason = self.kind.failure_reason(description)
        raise SageMakerJobError(
            f"{self.kind.noun} {name} {status}" + (f": {reason}" if reason else ""),
            job_name=name,
            status=status,
            failure_reason=reason,
        )

    def stop(self, name: str) -> bool:
        """Ask the service to stop the job; True when a stop was sent, False when it had ended."""
        description = self.describe(name)
        if description is None or description[self.kind.status_field] in self.kind.terminal:
            return False
        try:
            getattr(self.client, self.kind.stop_method)(**{self.kind.name_field: name})
        except ClientError as err:
            # It ended (or vanished) between describe and stop: nothing left to stop.
            ended = service_behaviour.error_of(err)[0] == service_behaviour.VALIDATION
            if not (ended or service_behaviour.is_not_found(self.kind.stop_operation, err)):
                raise
            return False
        self.log.info("Stop requested for %s %s", self.kind.noun, name)
        return True

    def result(self, description: Mapping[str, Any]) -> dict[str, Any]:
        """The XCom value: names, ARN, status and the kind's own fields; JSON-safe by construction."""
        return {
            "job_name": description[self.kind.name_field],
            "job_arn": description.get(self.kind.arn_field),
            "status": description[self.kind.status_field],
            **self.kind.result(description),
        }
