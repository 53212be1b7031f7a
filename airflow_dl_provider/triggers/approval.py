"""Wait in the triggerer for someone to approve or reject a model package in SageMaker's model registry."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent
from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.service_behaviour import MODEL_APPROVAL
from airflow_dl_provider.triggers.job import SageMakerJobTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping


def read_decision(description: Mapping[str, Any] | None) -> tuple[str, str, str] | None:
    """``(status, reason, decided_by)`` of a decided package (Approved or Rejected), None while pending."""
    status = (description or {}).get("ModelApprovalStatus")
    if status not in MODEL_APPROVAL.decided:
        return None
    assert description is not None
    modified = description.get("LastModifiedBy") or {}
    who = modified.get("UserProfileName") or (modified.get("IamIdentity") or {}).get("Arn")
    reason = description.get("ApprovalDescription") or f"{status} in the SageMaker model registry"
    return str(status), str(reason), str(who or "the model registry")


class ModelApprovalTrigger(SageMakerJobTrigger):
    """Poll ``DescribeModelPackage`` until its ``ModelApprovalStatus`` leaves ``PendingManualApproval``.

    Built like :class:`~airflow_dl_provider.triggers.job.SageMakerJobTrigger` (``job_kind="model_package"``,
    ``job_name`` the version's ARN; nothing to undo). One event ``{"status", "job_name", "message",
    "approval_status", "decided_by"}``: ``status`` is ``success`` (decided: ``approval_status`` says
    which, ``message`` is its ApprovalDescription), ``error`` (no such package) or ``timeout``.
    """

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                # boto3 and the local client are blocking: keep them off the triggerer's event loop.
                description = await asyncio.to_thread(self.engine.describe, self.job_name)
            except ClientError as err:
                if not service_behaviour.is_throttling(err):
                    raise
                description = {"ModelApprovalStatus": "throttled"}
            decided = read_decision(description)
            if decided is not None:
                status, reason, who = decided
                payload = {"approval_status": status, "decided_by": who}
                yield TriggerEvent(
                    {"status": "success", "job_name": self.job_name, "message": reason, **payload}
                )
                return
            if description is None:
                yield self._event("error", f"model package {self.job_name} does not exist")
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield self._event("timeout", f"model package {self.job_name} still awaits approval")
                return
            await asyncio.sleep(self.poll_interval)
