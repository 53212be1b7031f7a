"""How often a job is looked at, and what each look does: one policy for the worker, trigger and sensor.

:func:`poll_once` is the one place a description is classified: the engine's ``wait``, the trigger
and the sensor all ask it, through :class:`JobWatch` where they wait.

The rule (docs/jobs.rst, "Polling"): Describe at once; then pause ``min(1 s, poll_interval)``, each
pause 1.5 times the last (jitter +-20%), up to a ceiling of ``max(60 s, poll_interval)``, which is
never exceeded and carries no jitter. A short local job is seen to end within about a third of its
run time; a long cluster job costs 60 Describe calls per job-hour once the pauses reach the ceiling
(the first hour: about 11 more, spent in its first three minutes), and a status change shows in the
task log within 60 s. A pause never runs past the wait's deadline.

Logs follow the same looks (:class:`~airflow_dl_provider.jobs.logs.JobLogStreamer`): nothing before a
host runs the job's container, streams listed only until each host has one, and one GetLogEvents per
known stream per look.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.logs import JobLogStreamer
from airflow_dl_provider.jobs.progress import JobProgress

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_dl_provider.jobs.kinds import JobKind
    from airflow_dl_provider.jobs.logs import LogCursor

Verdict = Literal["success", "failure", "waiting"]
SUCCESS: Verdict = "success"
FAILURE: Verdict = "failure"
WAITING: Verdict = "waiting"
# What a wait is for: a usable job or resource, or a deleted resource's name set free.
Goal = Literal["ready", "gone"]
# The status an Outcome reports for a name the service does not know.
ABSENT = "absent"


@dataclass(frozen=True)
class Outcome:
    """What one look at a job or resource says.

    :param verdict: ``success``, ``failure`` (``reason`` says why, when the service does) or ``waiting``.
    :param status: the service's status, or ``absent`` when no job or resource has the name.
    :param message: one line for the log, the trigger event and the error.
    """

    verdict: Verdict
    status: str
    message: str
    name: str = ""
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.verdict != WAITING

    def error(self) -> SageMakerJobError:
        return SageMakerJobError(
            self.message, job_name=self.name, status=self.status, failure_reason=self.reason
        )


def poll_once(
    kind: JobKind,
    description: Mapping[str, Any] | None,
    *,
    name: str | None = None,
    goal: Goal = "ready",
    absent: Verdict = FAILURE,
) -> Outcome:
    """Classify one description (None: the service knows no such name) by the kind's row.

    :param name: the name to report; defaults to the description's own.
    :param goal: ``ready``: success is a succeeded state; ``gone``: success is the name being free
        again, and only the kind's deleting state is worth waiting on.
    :param absent: what a missing name means when ``goal`` is ``ready``: ``failure`` (it was started,
        so it should exist) or ``waiting`` (a sensor waiting for something else to start it).
    """
    name = name or str((description or {}).get(kind.name_field) or "")
    subject = f"{kind.noun} {name}"
    if description is None:
        if goal == "gone":
            return Outcome(SUCCESS, ABSENT, f"{subject} is gone", name)
        if absent == WAITING:
            return Outcome(WAITING, ABSENT, f"{subject} does not exist yet", name)
        return Outcome(absent, ABSENT, f"{subject} does not exist", name)
    status = str(description.get(kind.status_field))
    if goal == "gone":
        if status == kind.deleting:
            return Outcome(WAITING, status, f"{subject} is {status}", name)
        return Outcome(
            FAILURE,
            status,
            f"{subject} is {status} while being deleted; someone else is using this name",
            name,
        )
    if status in kind.succeeded:
        return Outcome(SUCCESS, status, f"{subject} {status}", name)
    if status in kind.failed or (kind.deleting is not None and status == kind.deleting):
        reason = kind.failure_reason(description) if status in kind.failed else "it is being deleted"
        return Outcome(
            FAILURE, status, f"{subject} {status}" + (f": {reason}" if reason else ""), name, reason
        )
    # Running, or a state this table does not know yet: the service may still move it on.
    return Outcome(WAITING, status, f"{subject} is {status}", name)


FIRST_PAUSE_SECONDS = 1.0
CEILING_SECONDS = 60.0
GROWTH = 1.5
JITTER = 0.2


class PollSchedule:
    """The pauses between looks at one job (see the module's rule).

    :param poll_interval: below one second it is the first pause (tests); above 60 s, the ceiling.
    :param uniform: ``random.uniform``, or a fixed stand-in in tests and benchmarks.
    """

    def __init__(
        self, poll_interval: float, *, uniform: Callable[[float, float], float] = random.uniform
    ) -> None:
        self.ceiling = max(CEILING_SECONDS, poll_interval)
        self._pause = min(FIRST_PAUSE_SECONDS, poll_interval)
        self._poll_interval = poll_interval
        self._uniform = uniform

    def next_pause(self, remaining: float | None = None) -> float:
        """The pause before the next look; ``remaining``: seconds left before the wait's deadline."""
        if self._pause >= self.ceiling:
            pause = self.ceiling
        else:
            pause = min(self._pause * self._uniform(1 - JITTER, 1 + JITTER), self.ceiling)
            self._pause = min(self._pause * GROWTH, self.ceiling)
        return pause if remaining is None else max(0.0, min(pause, remaining))

    def after_throttling(self, remaining: float | None = None) -> float:
        """A look the service throttled past botocore's retries: the pause doubles (at least poll_interval)."""
        self._pause = min(max(self._pause * 2, self._poll_interval), self.ceiling)
        return self.next_pause(remaining)


class JobWatch:
    """One wait on one job or resource: classify each description, log what is new, pace the looks.

    :param client: the SageMaker client (lists a tuning job's trials for the progress lines).
    :param logs_client: a CloudWatch Logs client; None copies no log lines (the trigger: the task
        copies them when it resumes, from ``cursor``).
    :param cursor: the log cursor, advanced in place.
    """

    def __init__(
        self,
        kind: JobKind,
        name: str,
        *,
        log: Any,
        poll_interval: float,
        client: Any = None,
        logs_client: Any = None,
        cursor: LogCursor | None = None,
        goal: Goal = "ready",
        absent: Verdict = "failure",
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.kind = kind
        self.name = name
        self.log = log
        self.goal: Goal = goal
        self.absent: Verdict = absent
        self.cursor: LogCursor = cursor if cursor is not None else {}
        self.schedule = PollSchedule(poll_interval, uniform=uniform)
        self.progress = JobProgress(kind, name, log, client)
        self.streamer = (
            JobLogStreamer(logs_client, kind.key, name, log)
            if logs_client is not None and kind.log_group
            else None
        )
        self._throttled = 0

    def see(self, description: Mapping[str, Any] | None) -> Outcome:
        """Classify one look, log its progress and copy the log lines it makes readable."""
        outcome = poll_once(self.kind, description, name=self.name, goal=self.goal, absent=self.absent)
        self.progress.observe(description, outcome.status)
        if self.streamer is not None and description is not None:
            self.streamer.follow(description, self.cursor)
        return outcome

    def throttled(self, err: Exception, remaining: float | None = None) -> float:
        """Say a throttled look once (then at debug), and how long to pause before the next."""
        self._throttled += 1
        log = self.log.warning if self._throttled == 1 else self.log.debug
        code, message = service_behaviour.error_of(err)
        log(
            "%s %s %s throttled (%s); polling again later",
            self.kind.describe_operation,
            self.name,
            "was" if self._throttled == 1 else "was again",
            f"{code}: {message}" if code else err,
        )
        return self.schedule.after_throttling(remaining)
