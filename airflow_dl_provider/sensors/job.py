"""Wait for a SageMaker job or resource that something else started, on a worker or in the triggerer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs import kinds
from airflow_dl_provider.jobs.engine import SUCCESS, WAITING, JobEngine

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_dl_provider.jobs.kinds import JobKind
    from airflow_dl_provider.jobs.polling import JobWatch


def _sensor_timeout() -> type[Exception]:
    try:
        from airflow.sdk.exceptions import AirflowSensorTimeout  # Airflow 3
    except ImportError:  # Airflow 2
        from airflow.exceptions import AirflowSensorTimeout  # type: ignore[no-redef,attr-defined]
    return AirflowSensorTimeout


class SageMakerJobSensor(AwsBaseSensor[SageMakerJobHook]):
    """Succeed when the job (or resource) succeeds; fail with its FailureReason when it fails or is stopped.

    A name that does not exist yet is waited for: the task that starts it may not have run. Nothing
    the sensor watches is stopped when the sensor is killed: it started nothing.

    :param job_kind: a job kind (``training``, ``tuning``, ``labeling``, ``compilation``, ``transform``,
        ``processing``) or a resource kind (``endpoint``: until InService; ``model_package``: until
        Completed, named by its ARN).
    :param job_name: the job or resource to watch. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot; defaults to
        ``[operators] default_deferrable``. The state is checked once before deferring; deferred, the
        trigger paces its looks by the engine's schedule (from ``poke_interval`` to a 60 s ceiling).
        Poking, Airflow pokes every ``poke_interval`` (60 s by default). Either way status changes,
        secondary status transitions and ended tuning trials are logged once each.
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields("job_name")

    def __init__(
        self,
        *,
        job_kind: str,
        job_name: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kind: JobKind = kinds.job_kind(job_kind)
        self.job_kind = job_kind
        self.job_name = job_name
        self.deferrable = deferrable
        self._watch: JobWatch | None = None

    def poke(self, context: Any) -> bool:
        engine = JobEngine(self.kind, self.hook.conn, log=self.log)
        if self._watch is None or self._watch.name != self.job_name:
            # Kept between pokes (poke mode), so each transition and trial is logged once.
            self._watch = engine.watch(
                self.job_name, poll_interval=self.poke_interval, absent=WAITING, with_logs=False
            )
        try:
            description = engine.describe(self.job_name)
        except ClientError as err:
            if not service_behaviour.is_throttling(err):
                raise
            self._watch.throttled(err)
            return False
        outcome = self._watch.see(description)
        if outcome.verdict == WAITING:
            return False
        if outcome.verdict == SUCCESS:
            return True
        raise outcome.error()

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        from airflow_dl_provider.triggers.job import SageMakerJobTrigger

        self.defer(
            trigger=SageMakerJobTrigger.for_task(
                self,
                job_kind=self.job_kind,
                job_name=self.job_name,
                max_wait=self.timeout,
                absent=WAITING,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None) -> None:
        """Resume after the trigger: succeed, or raise with the message of its event."""
        if not event:
            raise SageMakerJobError("resumed without a trigger event")
        if event["status"] == "success":
            self.log.info("%s", event["message"])
            return
        if event["status"] == "timeout":
            raise _sensor_timeout()(f"{event['message']} (sensor timeout={self.timeout:.0f}s)")
        raise SageMakerJobError(event["message"], job_name=event.get("job_name", self.job_name))
