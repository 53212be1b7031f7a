"""The human gate on Airflow 2.11 and 3.0 (no human-in-the-loop): approve in SageMaker's model registry.

:class:`ModelApprovalSensor` waits while the package is ``PendingManualApproval``; someone approves or
rejects it (Studio's model registry, ``aws sagemaker update-model-package``), and the sensor ends with
that decision and its ``ApprovalDescription``: approved, the deploy runs; rejected, the deploy is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.operators.approval import SkipMixin, _package_arn, conclude
from airflow_dl_provider.service_behaviour import MODEL_APPROVAL
from airflow_dl_provider.triggers.approval import read_decision

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class ModelApprovalSensor(AwsBaseSensor[SageMakerJobHook], SkipMixin):
    """Wait for a person to approve or reject the model package in SageMaker's model registry.

    :param model_package_arn: the version awaiting approval. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot; defaults to
        ``[operators] default_deferrable``. The status is checked once before deferring.
    :return: ``{"decision": "approved" | "rejected", "reason": its ApprovalDescription, "decided_by",
        "model_package_arn", "approval_status", "skipped": [task ids]}``
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields("model_package_arn")
    inherits_from_skipmixin = True
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        model_package_arn: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_package_arn = model_package_arn
        self.deferrable = deferrable
        self._decided: tuple[str, str, str] | None = None

    def poke(self, context: Any) -> bool:
        arn = _package_arn(self.model_package_arn, self.task_id)
        self._decided = read_decision(self.hook.conn.describe_model_package(ModelPackageName=arn))
        if self._decided is None:
            self.log.info("%s awaits approval in the SageMaker model registry", arn)
        return self._decided is not None

    def _conclude(self, context: Any, status: str, reason: str, who: str) -> dict[str, Any]:
        return conclude(
            self,
            context,
            model_package_arn=str(self.model_package_arn),
            approved=status == MODEL_APPROVAL.approved,
            reason=reason,
            decided_by=who,
            conn=None,  # the registry holds the decision already
        )

    def execute(self, context: Any) -> dict[str, Any]:
        if self.deferrable and not self.poke(context):
            from airflow_dl_provider.triggers.approval import ModelApprovalTrigger

            self.defer(
                trigger=ModelApprovalTrigger.for_task(
                    self,
                    job_kind="model_package",
                    job_name=str(self.model_package_arn),
                    max_wait=self.timeout,
                    poll_interval=self.poke_interval,
                ),
                method_name="execute_complete",
            )
        if not self.deferrable:
            super().execute(context)
        assert self._decided is not None
        return self._conclude(context, *self._decided)

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: the decision, or raise with why there is none."""
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "resumed without a trigger event")
            raise SageMakerJobError(str(message), job_name=str(self.model_package_arn))
        return self._conclude(context, event["approval_status"], event["message"], event["decided_by"])
