"""Wait for any SageMaker job in the triggerer, so a multi-hour job holds no worker slot."""

from __future__ import annotations

import asyncio
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.engine import JobEngine
from airflow_dl_provider.jobs.kinds import job_kind

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class SageMakerJobTrigger(BaseTrigger):
    """Poll a job until it ends; fire one event of the shape ``{"status", "job_name", "message"}``.

    ``status`` is ``success`` (the job succeeded), ``error`` (it failed or was stopped; ``message``
    carries its FailureReason) or ``timeout`` (``deadline`` passed while it still ran).

    :param job_kind: a key of :data:`~airflow_dl_provider.jobs.kinds.JOB_KINDS`.
    :param deadline: Unix time after which the trigger gives up; None waits as long as the job runs.
    """

    def __init__(
        self,
        *,
        job_kind: str,
        job_name: str,
        poll_interval: float = 30.0,
        deadline: float | None = None,
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
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_kind": self.job_kind,
                "job_name": self.job_name,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
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
        while True:
            # boto3 and the local client are blocking: keep them off the triggerer's event loop.
            try:
                description = await asyncio.to_thread(self.engine.describe, self.job_name)
            except ClientError as err:
                if not service_behaviour.is_throttling(err):
                    raise
                # Throttled past botocore's retries: the job runs on; ask again at the next poll.
                self.log.warning("%s %s: %s; polling again later", kind.noun, self.job_name, err)
                await asyncio.sleep(self.poll_interval)
                continue
            if description is None:
                yield self._event("error", f"{kind.noun} {self.job_name} does not exist")
                return
            status = description[kind.status_field]
            if status in kind.succeeded:
                yield self._event("success", f"{kind.noun} {self.job_name} {status}")
                return
            if status in kind.failed:
                reason = kind.failure_reason(description)
                yield self._event("error", f"{kind.noun} {self.job_name} {status}: {reason}".rstrip(": "))
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield self._event("timeout", f"{kind.noun} {self.job_name} still {status} at the deadline")
                return
            self.log.info(
                "%s %s is %s; next check in %ss", kind.noun, self.job_name, status, self.poll_interval
            )
            await asyncio.sleep(self.poll_interval)
