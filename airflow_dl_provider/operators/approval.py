"""Approval before production: a registered model package is approved or rejected, and says why.

Three ways to decide, one outcome. The decision is the package's ``ModelApprovalStatus`` (UpdateModelPackage
with an ``ApprovalDescription``; see ``service_behaviour.MODEL_APPROVAL``), the task's return value
``{"decision", "reason", "decided_by", "model_package_arn", ...}`` and a log line. A rejection deploys
nothing: the approval task succeeds (it got its answer) and its downstream tasks are skipped, as Airflow's
own ``ApprovalOperator`` does.

- ``approval: auto``: :class:`AutoApprovalOperator` approves when the evaluation reaches a bar.
- ``approval: human`` on Airflow >= 3.1: :class:`~airflow_dl_provider.operators.human_approval.HumanApprovalOperator`,
  Airflow's human-in-the-loop ``ApprovalOperator`` (Required Actions in the UI) with the evaluation in the form.
- ``approval: human`` on 2.11 and 3.0 (no HITL): :class:`~airflow_dl_provider.sensors.approval.ModelApprovalSensor`
  waits for someone to approve the package in SageMaker's model registry.

:func:`human_approval` picks the human gate for the running Airflow.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.links.published import PublishedOutputs
from airflow_dl_provider.service_behaviour import MODEL_APPROVAL

try:  # Airflow 3
    from airflow.sdk.bases.skipmixin import SkipMixin
except ImportError:  # Airflow 2.x
    from airflow.models.skipmixin import SkipMixin  # type: ignore[no-redef,attr-defined]

if TYPE_CHECKING:
    from collections.abc import Sequence

APPROVED = "approved"
REJECTED = "rejected"
#: Rendered templates of a missing value: an XCom of ``None`` renders as the string ``"None"``.
_MISSING = frozenset({"", "none", "null"})


def _number(value: Any, field: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: {value!r} is not a number; is it the evaluation's value?") from None


def auto_decision(score: Any, min_score: float, metric: str = "accuracy") -> tuple[bool, str]:
    """``(approved, reason)``: approved when the evaluation's ``score`` reaches ``min_score``.

    A missing score (no evaluation ran) is a rejection: nothing unmeasured goes to production.
    """
    value = _number(score, "score")
    if value is None:
        return False, f"no {metric} to judge by (the evaluation returned none): rejected"
    if value >= min_score:
        return True, f"{metric} {value:.4f} >= min {min_score:.4f} on the test split: approved automatically"
    return False, f"{metric} {value:.4f} < min {min_score:.4f} on the test split: rejected automatically"


def evaluation_summary(
    model_package_arn: str,
    score: Any,
    metric: str = "accuracy",
    min_score: float | None = None,
    note: str | None = None,
) -> str:
    """The evaluation as the approver reads it (Markdown: the HITL form's body).

    ``model_package_arn``, ``score`` and ``note`` may be Jinja templates, left for the task to render.
    """
    if isinstance(score, str) and "{{" in score:
        shown = score
    else:
        value = _number(score, "score")
        shown = "none (no evaluation ran)" if value is None else f"{value:.4f}"
    lines = [
        f"**Model package**: `{model_package_arn}`",
        "",
        "| metric | value on the test split |",
        "| --- | --- |",
        f"| {metric} | {shown} |",
    ]
    if min_score is not None:
        lines.append(f"| bar for automatic approval | {min_score:.4f} |")
    if note:
        lines += ["", f"**Evaluation**: {note}"]
    lines += ["", "Approve to deploy it to the endpoint; reject to keep what serves now."]
    return "\n".join(lines)


def update_request(model_package_arn: str, approved: bool, reason: str) -> dict[str, Any]:
    """The UpdateModelPackage call that records a decision; the reason cut to the service's limit."""
    return {
        "ModelPackageArn": model_package_arn,
        "ModelApprovalStatus": MODEL_APPROVAL.approved if approved else MODEL_APPROVAL.rejected,
        "ApprovalDescription": reason[: MODEL_APPROVAL.description_max],
    }


def downstream_ids(operator: Any) -> list[str]:
    """The tasks a rejection skips: the direct downstream, teardowns aside."""
    if not operator.has_dag():  # run on its own (a test): nothing downstream
        return []
    return sorted(t.task_id for t in operator.get_direct_relatives(upstream=False) if not t.is_teardown)


def skip_downstream(operator: Any, context: Any, result: dict[str, Any]) -> None:
    """Skip the operator's direct downstream tasks (a rejection deploys nothing).

    The decision is pushed as the return value first: on Airflow 3 ``skip`` ends the task by raising,
    so nothing returned after it would reach XCom.
    """
    tasks = [operator.dag.get_task(task_id) for task_id in result["skipped"]]
    if not tasks:
        return
    context["ti"].xcom_push(key="return_value", value=result)
    operator.log.info("Rejected: nothing is deployed; skipping %s", ", ".join(result["skipped"]))
    if "ti" in inspect.signature(operator.skip).parameters:  # Airflow 3
        operator.skip(ti=context["ti"], tasks=tasks)
    else:  # Airflow 2.x: skip(dag_run, execution_date, tasks)
        when = context.get("logical_date") or context.get("execution_date")
        operator.skip(context["dag_run"], when, tasks, map_index=context["ti"].map_index)


def record_decision(
    operator: Any, *, model_package_arn: str, approved: bool, reason: str, decided_by: str, conn: Any | None
) -> dict[str, Any]:
    """Record a decision: UpdateModelPackage through ``conn`` (None: the registry already holds it) and
    the log; the task's return value, with nothing ``skipped`` yet."""
    if conn is not None:
        from airflow_dl_provider.validation.requests import validate_request

        request = update_request(model_package_arn, approved, reason)
        validate_request("UpdateModelPackage", request)
        conn.update_model_package(**request)
    decision = APPROVED if approved else REJECTED
    operator.log.info("Model package %s %s by %s: %s", model_package_arn, decision, decided_by, reason)
    return {
        "decision": decision,
        "reason": reason,
        "decided_by": decided_by,
        "model_package_arn": model_package_arn,
        "approval_status": MODEL_APPROVAL.approved if approved else MODEL_APPROVAL.rejected,
        "skipped": [],
    }


def conclude(operator: Any, context: Any, **decision: Any) -> dict[str, Any]:
    """:func:`record_decision`, then on a rejection skip the downstream: nothing is deployed."""
    result = record_decision(operator, **decision)
    if result["decision"] == REJECTED:
        result["skipped"] = downstream_ids(operator)
        skip_downstream(operator, context, result)
    return result


def _package_arn(value: Any, task_id: str) -> str:
    arn = "" if value is None else str(value).strip()
    if arn.lower() in _MISSING:
        raise ValueError(f"{task_id}: model_package_arn: is empty; did the register task return an ARN?")
    return arn


class AutoApprovalOperator(PublishedOutputs, AwsBaseOperator[SageMakerJobHook], SkipMixin):
    """Approve the model package when its evaluation reaches ``min_score``, reject it otherwise.

    :param model_package_arn: the version to approve or reject. (templated)
    :param score: the evaluation's value on the test split, e.g. ``evaluate``'s ``value``. (templated)
    :param min_score: the bar: approved when ``score >= min_score``.
    :param metric: the metric's name, for the reason.
    :param passed: when set (templated: the retrain DAG's ``decide`` outcome), the decision is this
        instead of the bar; ``reason`` says why.
    :param reason: the reason recorded with ``passed``. (templated)
    :return: ``{"decision": "approved" | "rejected", "reason", "decided_by": "auto", "model_package_arn",
        "approval_status", "skipped": [task ids]}``
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields("model_package_arn", "score", "passed", "reason")
    inherits_from_skipmixin = True
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        model_package_arn: str,
        score: float | str | None = None,
        min_score: float = 0.0,
        metric: str = "accuracy",
        passed: bool | str | None = None,
        reason: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"{self.task_id}: min_score: must be between 0 and 1, got {min_score}")
        self.model_package_arn = model_package_arn
        self.score = score
        self.min_score = float(min_score)
        self.metric = metric
        self.passed = passed
        self.reason = reason

    def decision(self) -> tuple[bool, str]:
        """``(approved, reason)`` from ``passed`` when it is set, else from the bar."""
        if self.passed is None or str(self.passed).strip().lower() in _MISSING:
            return auto_decision(self.score, self.min_score, self.metric)
        approved = str(self.passed).strip().lower() in ("true", "1", "yes", "promoted", APPROVED)
        verdict = "approved" if approved else "rejected"
        return approved, f"{self.reason or 'the upstream decision'}; {verdict} automatically"

    def execute(self, context: Any) -> dict[str, Any]:
        arn = _package_arn(self.model_package_arn, self.task_id)
        approved, reason = self.decision()
        return conclude(
            self,
            context,
            model_package_arn=arn,
            approved=approved,
            reason=reason,
            decided_by="auto",
            conn=self.hook.conn,
        )


def hitl_available() -> bool:
    """Whether this Airflow has human-in-the-loop operators (3.1 and later, with the standard provider)."""
    try:
        from airflow.providers.standard.operators.hitl import ApprovalOperator  # noqa: F401
    except Exception:  # ImportError, or the provider's "needs Airflow 3.1+" feature exception
        return False
    return True


def human_approval(
    *,
    task_id: str,
    model_package_arn: str,
    summary: str,
    deferrable: bool,
    poll_interval: float,
    **kwargs: Any,
) -> Any:
    """The human gate for the running Airflow: HITL Required Actions on >= 3.1, else the registry sensor.

    :param summary: the evaluation (Markdown), shown in the HITL form. (templated)
    """
    if hitl_available():
        from airflow_dl_provider.operators.human_approval import HumanApprovalOperator

        return HumanApprovalOperator(
            task_id=task_id, model_package_arn=model_package_arn, body=summary, **kwargs
        )
    from airflow_dl_provider.sensors.approval import ModelApprovalSensor

    return ModelApprovalSensor(
        task_id=task_id,
        model_package_arn=model_package_arn,
        deferrable=deferrable,
        poke_interval=poll_interval,
        mode="reschedule" if not deferrable else "poke",
        **kwargs,
    )
