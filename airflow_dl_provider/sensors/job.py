"""Wait for a SageMaker job that something else started."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs import kinds
from airflow_dl_provider.jobs.engine import JobEngine

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_dl_provider.jobs.kinds import JobKind


class SageMakerJobSensor(AwsBaseSensor[SageMakerJobHook]):
    """Succeed when the job succeeds; fail with its FailureReason when it fails or is stopped.

    :param job_kind: ``training``, ``tuning``, ``labeling``, ``compilation``, ``transform`` or
        ``processing``.
    :param job_name: the job to watch. (templated)
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields("job_name")

    def __init__(self, *, job_kind: str, job_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind: JobKind = kinds.job_kind(job_kind)
        self.job_kind = job_kind
        self.job_name = job_name

    def poke(self, context: Any) -> bool:
        engine = JobEngine(self.kind, self.hook.conn, log=self.log)
        try:
            description = engine.describe(self.job_name)
        except ClientError as err:
            if not service_behaviour.is_throttling(err):
                raise
            self.log.warning("%s %s: %s; poking again later", self.kind.noun, self.job_name, err)
            return False
        if description is None or description[self.kind.status_field] in self.kind.running:
            return False
        engine.check(description)
        return True
