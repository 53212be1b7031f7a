"""Start-or-reattach, poll, wait, stop or undo: written once for every job and resource kind.

The engine talks to a client with the SageMaker API's method names (boto3's, or the local backend's
drop-in client) and knows a kind only through its :class:`~.kinds.JobKind` row. :func:`poll_once` is
the one place a description is classified (:mod:`~.polling`, re-exported here): ``wait`` here, the
trigger and the sensor all ask it, and pace their looks by the same :class:`~.polling.PollSchedule`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.logs import JobLogStreamer, LogCursor
from airflow_dl_provider.jobs.naming import IF_EXISTS_CHOICES, MAX_ATTEMPTS, IfExists, JobNames
from airflow_dl_provider.jobs.polling import (
    FAILURE,
    SUCCESS,
    WAITING,
    Goal,
    JobWatch,
    Outcome,
    Verdict,
    poll_once,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_dl_provider.jobs.kinds import JobKind


# How long past the job's own limit we keep waiting: provisioning p3dn capacity and uploading
# the model are not counted in MaxRuntimeInSeconds.
WAIT_SLACK_SECONDS = 3600
# Pauses before copying the last log lines again when a CloudWatch Logs call failed (throttled).
LOG_RETRY_PAUSES = (1.0, 2.0, 4.0)
# A retry comes soon after its first try: its version is among the group's newest.
RETRY_LOOKBACK = 20
# The metadata property a versioned resource carries to name the task instance that created it.
TASK_KEY_PROPERTY = "airflow:task-instance"


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

    def poll_once(
        self,
        description: Mapping[str, Any] | None,
        *,
        name: str | None = None,
        goal: Goal = "ready",
        absent: Verdict = FAILURE,
    ) -> Outcome:
        """:func:`poll_once` for this engine's kind."""
        return poll_once(self.kind, description, name=name, goal=goal, absent=absent)

    def ensure(
        self, request: Mapping[str, Any], names: JobNames, *, if_exists: IfExists = "reattach"
    ) -> JobHandle:
        """Create the task instance's job, or attach to the one an earlier try started.

        ``names`` (computed once, by the operator, from the task instance's ids) are tried in order.
        ``reattach``: the first that is running or completed is returned; failed and stopped ones are
        passed over; the first free name is created. ``fail``: any existing job is an error. ``new``:
        always create, on the first free name.
        """
        if if_exists not in IF_EXISTS_CHOICES:
            raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS_CHOICES)}, got {if_exists!r}")
        for name in names:
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
        try:
            response = getattr(self.client, self.kind.create_method)(**body)
        except ClientError as err:
            if not service_behaviour.is_name_in_use(self.kind.create_operation, err):
                raise
            # The name was free a moment ago and is this task's: botocore retried a Create whose answer
            # was lost (the first call created it), or another try of this task won the race.
            description = self.describe(name)
            if description is None:
                raise
            self.log.info(
                "%s %s was created by a call whose answer was lost; attached to it", self.kind.noun, name
            )
            return JobHandle(name, description[self.kind.arn_field], True, description)
        return JobHandle(name, response.get(self.kind.arn_field, ""), True)

    def ensure_named(
        self,
        name: str,
        request: Mapping[str, Any],
        *,
        poll_interval: float = 30.0,
        max_wait: float | None = None,
    ) -> JobHandle:
        """Create the resource ``name``, or attach to the one that has the name (a resource's own name).

        One in a state that takes no call but its delete (``only_deletable``: a Failed endpoint) is
        deleted and created again. One being deleted keeps its name until it is gone
        (``ASYNC_DELETE``): that is waited out first, so the create is not refused. A live one is
        returned with ``created=False``; what to change on it is the caller's.
        """
        description = self.describe(name)
        if description is not None and description[self.kind.status_field] in self.kind.only_deletable:
            self.log.info(
                "%s %s is %s; deleting it to create it again",
                self.kind.noun,
                name,
                description[self.kind.status_field],
            )
            self.delete(name)
            description = self.describe(name)
        if description is not None and description[self.kind.status_field] == self.kind.deleting:
            self.log.info("%s %s is %s; waiting until it is gone", self.kind.noun, name, self.kind.deleting)
            self.wait(name, poll_interval=poll_interval, max_wait=max_wait, goal="gone")
            description = None
        if description is None:
            return self._create(name, request)
        self.log.info("Reattached: %s %s is %s", self.kind.noun, name, description[self.kind.status_field])
        return JobHandle(name, description[self.kind.arn_field], False, description)

    def find_version(self, request: Mapping[str, Any], task_key: str) -> dict[str, Any] | None:
        """The version of ``request``'s group that the task instance ``task_key`` created, if any.

        Versions have no name to find them by: each carries the task key in its metadata
        (:data:`TASK_KEY_PROPERTY`), and the group's newest :data:`RETRY_LOOKBACK` are looked at.
        """
        group_field = self.kind.versioned_in
        if group_field is None:
            raise ValueError(f"{self.kind.noun} is not versioned; use ensure or ensure_named")
        listed = getattr(self.client, self.kind.list_method)(
            **{group_field: request[group_field]},
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=RETRY_LOOKBACK,
        )
        for summary in listed.get(self.kind.summaries_field, []):
            described = self.describe(summary[self.kind.arn_field])
            if (
                described
                and (described.get("CustomerMetadataProperties") or {}).get(TASK_KEY_PROPERTY) == task_key
            ):
                return described
        return None

    def ensure_versioned(
        self, request: Mapping[str, Any], task_key: str, *, stage: Callable[[], None] | None = None
    ) -> JobHandle:
        """Create the task instance's version in its group, or attach to the one an earlier try created.

        The handle's name is the version's ARN (Describe takes it as the name). ``stage`` runs only
        before a create: uploads the new version points at.
        """
        existing = self.find_version(request, task_key)
        if existing is not None:
            arn = existing[self.kind.arn_field]
            self.log.info("Reattached: %s %s was created by an earlier try", self.kind.noun, arn)
            return JobHandle(arn, arn, False, existing)
        if stage is not None:
            stage()
        body = {
            **request,
            "CustomerMetadataProperties": {
                **(request.get("CustomerMetadataProperties") or {}),
                TASK_KEY_PROPERTY: task_key,
            },
        }
        self.log.info("Creating %s in %s", self.kind.noun, request[str(self.kind.versioned_in)])
        arn = getattr(self.client, self.kind.create_method)(**body)[self.kind.arn_field]
        return JobHandle(arn, arn, True)

    def default_max_wait(self, request: Mapping[str, Any]) -> float | None:
        """The job's own time limit plus slack; None (no cap) when the request sets none."""
        limit = self.kind.max_seconds(request)
        return None if not limit else float(limit) + WAIT_SLACK_SECONDS

    def watch(
        self,
        name: str,
        *,
        poll_interval: float,
        log_cursor: LogCursor | None = None,
        goal: Goal = "ready",
        absent: Verdict = FAILURE,
        with_logs: bool = True,
    ) -> JobWatch:
        """A :class:`~.polling.JobWatch` on ``name`` through this engine's clients (the trigger's too)."""
        return JobWatch(
            self.kind,
            name,
            log=self.log,
            poll_interval=poll_interval,
            client=self.client,
            logs_client=self.logs_client if with_logs else None,
            cursor=log_cursor,
            goal=goal,
            absent=absent,
        )

    def wait(
        self,
        name: str,
        *,
        poll_interval: float = 30.0,
        max_wait: float | None = None,
        log_cursor: LogCursor | None = None,
        goal: Goal = "ready",
    ) -> dict[str, Any]:
        """Poll until :func:`poll_once` says done, logging progress and log lines; return the description.

        Looks are paced by :class:`~.polling.PollSchedule`: at once, then from a second growing to a
        60 s ceiling. A look the service throttles past botocore's own retries is tried again later:
        the job runs (and bills) on, and failing the task would only make its retry reattach.

        :param goal: ``ready`` (succeeded) or ``gone`` (a deleted resource's name is free; returns ``{}``).
        :raises SageMakerJobError: it failed or was stopped, or ``max_wait`` passed (a job is then
            stopped: nobody is waiting for it any more; a resource is left as it is).
        """
        watch = self.watch(name, poll_interval=poll_interval, log_cursor=log_cursor, goal=goal)
        deadline = None if max_wait is None else self._clock() + max_wait
        while True:
            remaining = None if deadline is None else max(0.0, deadline - self._clock())
            try:
                description = self.describe(name)
            except ClientError as err:
                if not service_behaviour.is_throttling(err) or remaining == 0.0:
                    raise
                self._sleep(watch.throttled(err, remaining))
                continue
            outcome = watch.see(description)
            if outcome.done:
                self._copy_the_rest(watch.streamer, watch.cursor)
            if outcome.verdict == SUCCESS:
                return dict(description or {})
            if outcome.verdict == FAILURE:
                raise outcome.error()
            if deadline is not None and self._clock() >= deadline:
                stopped = not self.kind.resource and goal == "ready"
                if stopped:
                    self.stop(name)
                raise SageMakerJobError(
                    f"{self.kind.noun} {name} still {outcome.status} after max_wait={max_wait:.0f}s"
                    + ("; stopped it" if stopped else ""),
                    job_name=name,
                    status=outcome.status,
                )
            self._sleep(watch.schedule.next_pause(None if deadline is None else deadline - self._clock()))

    def copy_logs(self, name: str, cursor: LogCursor) -> None:
        """Copy every log line ``cursor`` has not had (before deferring, and on resuming)."""
        streamer = self._streamer(name)
        if streamer:
            streamer.copy_new_lines(cursor)
            self._copy_the_rest(streamer, cursor)

    def _copy_the_rest(self, streamer: JobLogStreamer | None, cursor: LogCursor) -> None:
        """A copy whose call failed (throttled) is tried a few more times: no later look will."""
        for pause in LOG_RETRY_PAUSES:
            if streamer is None or not streamer.failed:
                return
            self._sleep(pause)
            streamer.copy_new_lines(cursor)

    def _streamer(self, name: str) -> JobLogStreamer | None:
        if self.logs_client is None or not self.kind.log_group:
            return None
        return JobLogStreamer(self.logs_client, self.kind.key, name, self.log)

    def check(self, description: Mapping[str, Any], *, name: str | None = None) -> dict[str, Any]:
        """Return the description of a succeeded job; raise with its FailureReason otherwise.

        A job the service stopped at a limit of the request says so first (``MaxRuntimeExceeded: ...``):
        it was not stopped by anyone, and the fix is in the request.
        """
        outcome = self.poll_once(description, name=name)
        if outcome.verdict == SUCCESS:
            return dict(description)
        if outcome.verdict == WAITING:
            raise SageMakerJobError(outcome.message, job_name=outcome.name, status=outcome.status)
        raise outcome.error()

    def stop(self, name: str) -> bool:
        """Ask the service to stop the job; True when a stop was sent, False when it had ended."""
        if self.kind.resource:
            return False  # no Stop call: a resource is deleted or rolled back (undo)
        description = self.describe(name)
        if description is None or self.poll_once(description, name=name).done:
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

    def delete(self, name: str) -> bool:
        """Start deleting a resource; True when the delete was sent, False when it is gone or going.

        :raises ClientError: the service refused (a resource in progress takes no delete).
        """
        try:
            getattr(self.client, self.kind.delete_method)(**{self.kind.name_field: name})
        except ClientError as err:
            if service_behaviour.is_not_found(self.kind.describe_operation, err):
                return False
            raise
        self.log.info("Delete requested for %s %s", self.kind.noun, name)
        return True

    def undo(
        self, name: str, undo: Mapping[str, Any] | None, *, budget: float, poll_interval: float = 1.0
    ) -> bool:
        """Take back what a killed task started; True when the service was asked to.

        ``undo`` is what the task recorded when it started something: ``{"action": "stop"}`` (a job),
        ``{"action": "delete"}`` (a resource it created) or ``{"action": "restore", "fields": {...}}``
        (a resource it updated: ``Update<noun>`` with the fields it had before). None: it started
        nothing, so nothing is touched. A resource the service is still changing takes neither a delete
        nor an update (``service_behaviour.IN_PROGRESS``) and no call cancels the change: it is polled
        for up to ``budget`` seconds (a killed task gets a few), then left, saying what is left to do.
        """
        action = (undo or {}).get("action")
        if action is None:
            return False
        if action == "stop":
            return self.stop(name)
        deadline = self._clock() + budget
        description = self.describe(name)
        while description is not None and description[self.kind.status_field] in self.kind.running:
            if self._clock() >= deadline:
                status = description[self.kind.status_field]
                what = (
                    "delete it"
                    if action == "delete"
                    else f"update it back to {dict(undo or {}).get('fields')}"
                )
                self.log.error(
                    "%s %s is still %s, and the service takes no call on it until that ends; "
                    "left it: %s once it is no longer %s",
                    self.kind.noun,
                    name,
                    status,
                    what,
                    status,
                )
                return False
            self._sleep(min(poll_interval, max(0.0, deadline - self._clock())))
            description = self.describe(name)
        if description is None or description[self.kind.status_field] == self.kind.deleting:
            return False
        if action == "delete":
            return self.delete(name)
        if action == "restore":
            fields = dict(dict(undo or {}).get("fields") or {})
            if all(description.get(k) == v for k, v in fields.items()):
                self.log.info("%s %s already has %s; nothing to roll back", self.kind.noun, name, fields)
                return False
            getattr(self.client, self.kind.update_method)(**{self.kind.name_field: name, **fields})
            self.log.info("Rolled %s %s back to %s", self.kind.noun, name, fields)
            return True
        raise ValueError(f"undo action {action!r} is not one of stop, delete, restore")

    def result(self, description: Mapping[str, Any]) -> dict[str, Any]:
        """The XCom value: names, ARN, status and the kind's own fields; JSON-safe by construction."""
        return {
            "job_name": description[self.kind.name_field],
            "job_arn": description.get(self.kind.arn_field),
            "status": description[self.kind.status_field],
            **self.kind.result(description),
        }
