"""The human gate on Airflow >= 3.1: Airflow's own human-in-the-loop ``ApprovalOperator``.

The approver reads the evaluation in the task's Required Actions form, picks Approve or Reject and may
give a reason; the answer becomes the model package's ``ModelApprovalStatus`` (UpdateModelPackage,
``ApprovalDescription`` naming who decided and why). Importing this module needs Airflow 3.1+: use
:func:`airflow_dl_provider.operators.approval.human_approval`, which picks the registry sensor on older
versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.operators.approval import _package_arn, downstream_ids, record_decision

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The form's one field: why, recorded in the package's ApprovalDescription.
REASON = "reason"


class HumanApprovalOperator(ApprovalOperator):
    """Ask a person (Airflow's Required Actions) to approve the model package for production.

    :param model_package_arn: the version to approve or reject. (templated)
    :param body: the evaluation summary the approver reads (Markdown). (templated)
    :param subject: the request's headline. (templated)
    :param aws_conn_id: the connection UpdateModelPackage goes through.
    :param region_name: its region; default the connection's.
    :return: ``{"decision": "approved" | "rejected", "reason", "decided_by": the user's name,
        "model_package_arn", "approval_status", "skipped": [task ids]}``
    """

    template_fields: Sequence[str] = ("subject", "body", "model_package_arn")

    def __init__(
        self,
        *,
        model_package_arn: str,
        subject: str = "Deploy this model to production?",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow.sdk import Param

        params = {REASON: Param("", type="string", title="Reason (recorded in the model registry)")}
        super().__init__(subject=subject, params=params, **kwargs)
        self.model_package_arn = model_package_arn
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """The answer came: record it on the package, then let the base class skip the deploy on Reject.

        Recorded first: on Airflow 3 the base class's skip ends the task by raising.
        """
        if "error" in event:  # a timeout or a trigger error: the base class raises it
            return super().execute_complete(context=context, event=event)
        self.validate_chosen_options(event["chosen_options"])
        approved = event["chosen_options"] == [self.APPROVE]
        user = event.get("responded_by_user") or {}
        who = str(user.get("name") or user.get("id") or "a user")
        why = str((event.get("params_input") or {}).get(REASON) or "").strip() or "no reason given"
        hook = SageMakerJobHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        result = record_decision(
            self,
            model_package_arn=_package_arn(self.model_package_arn, self.task_id),
            approved=approved,
            reason=f"{'approved' if approved else 'rejected'} by {who} in Airflow: {why}",
            decided_by=who,
            conn=hook.conn,
        )
        if not approved:
            result["skipped"] = downstream_ids(self)
            context["ti"].xcom_push(key="return_value", value=result)
        super().execute_complete(context=context, event=event)
        return result
