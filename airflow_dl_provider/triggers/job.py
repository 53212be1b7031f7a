"""Wait for any SageMaker job or resource in the triggerer, so a multi-hour wait holds no worker slot."""

from __future__ import annotations

import asyncio
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.engine import FAILURE, SUCCESS, WAITING, JobEngine, Verdict
from airflow_dl_provider.jobs.kinds import job_kind

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

# The triggerer gives on_kill [triggerer] on_kill_timeout (30 s by default); stay inside it.
KILL_BUDGET_SECONDS = 25.0


class SageMakerJobTrigger(BaseTrigger):
    """Poll a job or resource until it ends; fire one event ``{"status", "job_name", "message"}``.

    ``status`` is ``success`` (it succeeded: a job Completed, an endpoint InService), ``error`` (it
    failed or was stopped; ``message`` carries its FailureReason) or ``timeout`` (``deadline`` passed
    while it still ran). Each poll is classified by :func:`~airflow_dl_provider.jobs.engine.poll_once`
    and paced by the engine's :class:`~airflow_dl_provider.jobs.polling.PollSchedule`; status changes,
    secondary status transitions and ended tuning trials go to the trigger's log as they appear.

    :param job_kind: a key of :data:`~airflow_dl_provider.jobs.kinds.KINDS` (``training``, ``endpoint``, ...).
    :param job_name: the job or resource name (a model package's ARN).
    :param deadline: Unix time after which the trigger gives up; None waits as long as it runs.
    :param absent: what a name the service does not know means: ``failure`` (the task started it, so
        it should exist) or ``waiting`` (a sensor waiting for something else to start it).
    :param undo: what the deferred task started, undone if the task is killed while deferred
        (:meth:`~airflow_dl_provider.jobs.engine.JobEngine.undo`); None (a sensor): nothing is touched.
    """

    def __init__(
        self,
        *,
        job_kind: str,
        job_name: str,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        absent: Verdict = FAILURE,
        undo: Mapping[str, Any] | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.job_kind = job_kind
        self.job_name = job_name
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.absent: Verdict = absent
        self.undo = dict(undo) if undo is not None else None
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    @classmethod
    def for_task(
        cls,
        operator: Any,
        *,
        job_kind: str,
        job_name: str,
        max_wait: float | None,
        undo: Mapping[str, Any] | None = None,
        absent: Verdict = FAILURE,
        poll_interval: float | None = None,
    ) -> SageMakerJobTrigger:
        """The trigger for an AWS operator or sensor: its connection, region, verify and botocore config."""
        return cls(
            job_kind=job_kind,
            job_name=job_name,
            poll_interval=float(poll_interval if poll_interval is not None else operator.poll_interval),
            deadline=None if max_wait is None else time.time() + max_wait,
            absent=absent,
            undo=undo,
            aws_conn_id=operator.aws_conn_id,
            region_name=operator.region_name,
            verify=operator.verify,
            botocore_config=operator.botocore_config,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_kind": self.job_kind,
                "job_name": self.job_name,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "absent": self.absent,
                "undo": self.undo,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    @cached_property
    def engine(self) -> JobEngine:
        hook = SageMakerJobHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )
        return JobEngine(job_kind(self.job_kind), hook.conn, log=self.log)

    def _event(self, status: str, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "job_name": self.job_name, "message": message})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        kind = job_kind(self.job_kind)
        # Log lines are copied by the task when it resumes (from its cursor): here only progress.
        watch = self.engine.watch(
            self.job_name, poll_interval=self.poll_interval, absent=self.absent, with_logs=False
        )
        while True:
            remaining = None if self.deadline is None else max(0.0, self.deadline - time.time())
            # boto3 and the local client are blocking: keep them off the triggerer's event loop.
            try:
                description = await asyncio.to_thread(self.engine.describe, self.job_name)
            except ClientError as err:
                if not service_behaviour.is_throttling(err):
                    raise
                # Throttled past botocore's retries: it runs on; ask again after a longer pause.
                await asyncio.sleep(watch.throttled(err, remaining))
                continue
            # A tuning job's trials are listed here as they end: a blocking call too.
            outcome = await asyncio.to_thread(watch.see, description)
            if outcome.verdict == SUCCESS:
                yield self._event("success", outcome.message)
                return
            if outcome.verdict != WAITING:
                yield self._event("error", outcome.message)
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield self._event(
                    "timeout", f"{kind.noun} {self.job_name} still {outcome.status} at the deadline"
                )
                return
            await asyncio.sleep(
                watch.schedule.next_pause(None if self.deadline is None else self.deadline - time.time())
            )

    async def on_kill(self) -> None:
        """The task was killed while deferred (marked failed, cleared): undo what it started, nothing else."""
        if not self.undo:
            return
        await asyncio.to_thread(
            self.engine.undo,
            self.job_name,
            self.undo,
            budget=KILL_BUDGET_SECONDS,
            poll_interval=min(self.poll_interval, 5.0),
        )
