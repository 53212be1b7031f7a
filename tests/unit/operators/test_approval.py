"""Approval before production: auto, the HITL form (Airflow >= 3.1) and the registry sensor (2.11, 3.0).

Each way ends the same: the package's ModelApprovalStatus with a reason, the decision returned, and on
a rejection the deploy skipped. The sensor tests run on every Airflow version (``make test-compat``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import types
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.operators.approval import (
    AutoApprovalOperator,
    auto_decision,
    evaluation_summary,
    hitl_available,
    human_approval,
    skip_downstream,
)
from airflow_dl_provider.sensors.approval import ModelApprovalSensor
from airflow_dl_provider.triggers.approval import ModelApprovalTrigger
from airflow_dl_provider.validation.requests import validate_request
from tests.unit.operators.stubs import NOW, use

if TYPE_CHECKING:
    from botocore.stub import Stubber

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/digits/4"


def _expect_update(stub: Stubber, status: str, reason: str) -> None:
    request = {"ModelPackageArn": PACKAGE, "ModelApprovalStatus": status, "ApprovalDescription": reason}
    validate_request("UpdateModelPackage", request)
    stub.add_response("update_model_package", {"ModelPackageArn": PACKAGE}, request)


def _described(status: str, reason: str | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "ModelPackageName": "digits",
        "ModelPackageArn": PACKAGE,
        "CreationTime": NOW,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": status,
        "LastModifiedBy": {"UserProfileName": "maria"},
    }
    if reason:
        described["ApprovalDescription"] = reason
    return described


class _Recorded:
    """Stands in for a task context and records what the operator skipped."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}
        self.ti = types.SimpleNamespace(
            map_index=-1, xcom_push=lambda key, value: self.pushed.__setitem__(key, value)
        )
        self.context: dict[str, Any] = {"ti": self.ti, "dag_run": object(), "logical_date": NOW}
        self.skipped: list[str] = []

    def patch(self, op: Any) -> None:
        def skip(*args: Any, **kwargs: Any) -> None:
            tasks = kwargs.get("tasks", args[-1] if args else [])
            self.skipped += [t.task_id for t in tasks]

        skip.__signature__ = inspect.signature(type(op).skip)  # type: ignore[attr-defined]
        op.skip = skip


def _with_deploy(op: Any) -> Any:
    """``op`` in a DAG, upstream of a ``deploy`` task."""
    from airflow_dl_provider.pipelines.templates import DAG

    try:
        from airflow.providers.standard.operators.empty import EmptyOperator
    except ImportError:  # Airflow 2.x
        from airflow.operators.empty import EmptyOperator  # type: ignore[no-redef]

    dag = DAG(
        dag_id="approval_test", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), schedule=None
    )
    dag.add_task(op)
    op >> EmptyOperator(task_id="deploy", dag=dag)
    return op


# -- auto -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "approved", "reason"),
    [
        ("0.9612", True, "accuracy 0.9612 >= min 0.9000 on the test split: approved automatically"),
        (0.9, True, "accuracy 0.9000 >= min 0.9000 on the test split: approved automatically"),
        ("0.85", False, "accuracy 0.8500 < min 0.9000 on the test split: rejected automatically"),
        ("None", False, "no accuracy to judge by (the evaluation returned none): rejected"),
    ],
)
def test_auto_decision_is_the_bar(score: Any, approved: bool, reason: str) -> None:
    assert auto_decision(score, 0.9) == (approved, reason)


def test_auto_decision_refuses_a_score_that_is_not_a_number() -> None:
    with pytest.raises(ValueError, match=r"^score: 'n/a' is not a number"):
        auto_decision("n/a", 0.9)


@pytest.mark.parametrize(
    ("score", "status", "reason", "skipped"),
    [
        ("0.97", "Approved", "accuracy 0.9700 >= min 0.9000 on the test split: approved automatically", []),
        (
            "0.5",
            "Rejected",
            "accuracy 0.5000 < min 0.9000 on the test split: rejected automatically",
            ["deploy"],
        ),
    ],
)
def test_auto_approval_records_why_and_a_rejection_skips_the_deploy(
    sagemaker: Any, score: str, status: str, reason: str, skipped: list[str]
) -> None:
    client, stub = sagemaker
    op = _with_deploy(
        AutoApprovalOperator(
            task_id="approve", model_package_arn=PACKAGE, score=score, min_score=0.9, region_name="us-east-1"
        )
    )
    use(op, client)
    recorded = _Recorded()
    recorded.patch(op)
    _expect_update(stub, status, reason)

    result = op.execute(recorded.context)

    assert result == {
        "decision": status.lower(),
        "reason": reason,
        "decided_by": "auto",
        "model_package_arn": PACKAGE,
        "approval_status": status,
        "skipped": skipped,
    }
    assert recorded.skipped == skipped


def test_auto_follows_an_upstream_decision(sagemaker: Any) -> None:
    client, stub = sagemaker
    op = AutoApprovalOperator(
        task_id="approve_challenger",
        model_package_arn=PACKAGE,
        score="0.99",
        min_score=0.9,
        passed="kept_champion",
        reason="challenger accuracy 0.99 does not beat champion 0.99",
        region_name="us-east-1",
    )
    use(op, client)
    _expect_update(
        stub, "Rejected", "challenger accuracy 0.99 does not beat champion 0.99; rejected automatically"
    )
    assert op.execute(_Recorded().context)["decision"] == "rejected"


def test_an_empty_package_arn_fails_before_any_call(sagemaker: Any) -> None:
    client, _ = sagemaker
    op = AutoApprovalOperator(
        task_id="approve", model_package_arn="None", score="1.0", region_name="us-east-1"
    )
    use(op, client)
    with pytest.raises(ValueError, match=r"^approve: model_package_arn: is empty; did the register task"):
        op.execute(_Recorded().context)


def test_the_summary_keeps_templates_for_the_task_to_render() -> None:
    body = evaluation_summary("{{ arn }}", "{{ score }}", min_score=0.9, note="{{ why }}")
    assert "| accuracy | {{ score }} |" in body and "`{{ arn }}`" in body and "{{ why }}" in body
    assert "| accuracy | 0.9500 |" in evaluation_summary(PACKAGE, "0.95")


# -- the registry sensor (Airflow 2.11 and 3.0; on every version) --------------------------------------


def _sensor(client: Any, **kwargs: Any) -> ModelApprovalSensor:
    op = ModelApprovalSensor(
        task_id="approve", model_package_arn=PACKAGE, region_name="us-east-1", poke_interval=1, **kwargs
    )
    use(op, client)
    return op


def test_sensor_waits_while_pending_then_ends_with_the_registry_decision(sagemaker: Any) -> None:
    client, stub = sagemaker
    op = _with_deploy(_sensor(client))
    use(op, client)
    recorded = _Recorded()
    recorded.patch(op)
    params = {"ModelPackageName": PACKAGE}
    stub.add_response("describe_model_package", _described("PendingManualApproval"), params)
    stub.add_response("describe_model_package", _described("Approved", "Looks right on the holdout"), params)

    assert op.poke(recorded.context) is False
    assert op.poke(recorded.context) is True
    result = op._conclude(recorded.context, *op._decided)  # what execute returns once poke is True

    assert result["decision"] == "approved" and result["reason"] == "Looks right on the holdout"
    assert result["decided_by"] == "maria" and recorded.skipped == []


def test_sensor_rejection_skips_the_deploy_with_the_reason(sagemaker: Any) -> None:
    client, stub = sagemaker
    op = _with_deploy(_sensor(client, mode="poke"))
    use(op, client)
    recorded = _Recorded()
    recorded.patch(op)
    stub.add_response(
        "describe_model_package", _described("Rejected", "bias on class 8"), {"ModelPackageName": PACKAGE}
    )

    result = op.execute(recorded.context)

    assert (result["decision"], result["reason"], result["skipped"]) == (
        "rejected",
        "bias on class 8",
        ["deploy"],
    )
    assert recorded.skipped == ["deploy"]


def test_deferrable_sensor_defers_to_the_approval_trigger(sagemaker: Any) -> None:
    from airflow.exceptions import TaskDeferred

    client, stub = sagemaker
    op = _sensor(client, deferrable=True, timeout=3600)
    stub.add_response(
        "describe_model_package", _described("PendingManualApproval"), {"ModelPackageName": PACKAGE}
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(_Recorded().context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, ModelApprovalTrigger)
    path, kwargs = trigger.serialize()
    assert path == "airflow_dl_provider.triggers.approval.ModelApprovalTrigger"
    assert (kwargs["job_kind"], kwargs["job_name"], kwargs["undo"]) == ("model_package", PACKAGE, None)

    event = {"status": "success", "message": "ok by me", "approval_status": "Approved", "decided_by": "maria"}
    assert op.execute_complete(_Recorded().context, event)["decision"] == "approved"
    with pytest.raises(Exception, match="does not exist"):
        op.execute_complete(
            _Recorded().context, {"status": "error", "message": f"model package {PACKAGE} does not exist"}
        )


def test_trigger_polls_until_the_package_is_decided(sagemaker: Any) -> None:
    client, stub = sagemaker
    trigger = ModelApprovalTrigger(job_kind="model_package", job_name=PACKAGE, poll_interval=0)
    from airflow_dl_provider.jobs.engine import JobEngine
    from airflow_dl_provider.jobs.kinds import job_kind

    trigger.__dict__["engine"] = JobEngine(job_kind("model_package"), client)
    params = {"ModelPackageName": PACKAGE}
    stub.add_response("describe_model_package", _described("PendingManualApproval"), params)
    stub.add_response("describe_model_package", _described("Rejected"), params)

    async def first() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first()).payload
    assert event == {
        "status": "success",
        "job_name": PACKAGE,
        "message": "Rejected in the SageMaker model registry",
        "approval_status": "Rejected",
        "decided_by": "maria",
    }


def test_skip_downstream_pushes_the_decision_then_speaks_each_airflow_versions_skip() -> None:
    deploy = types.SimpleNamespace(task_id="deploy", is_teardown=False)

    class Op:
        task_id = "approve"
        log = types.SimpleNamespace(info=lambda *_: None)
        dag = types.SimpleNamespace(get_task=lambda task_id: deploy)

        def __init__(self, parameters: str) -> None:
            self.calls: list[Any] = []
            exec(f"def skip({parameters}): self.calls.append(tasks)", {"self": self}, ns := {})
            self.skip = ns["skip"]

    for parameters in ("ti, tasks", "dag_run, execution_date, tasks, map_index=-1"):
        recorded = _Recorded()
        op = Op(parameters)
        result = {"decision": "rejected", "skipped": ["deploy"]}
        skip_downstream(op, recorded.context, result)
        assert op.calls == [[deploy]]
        # Pushed before the skip, which ends an Airflow 3 task by raising.
        assert recorded.pushed == {"return_value": result}


# -- the HITL gate (Airflow >= 3.1) ---------------------------------------------------------------------

needs_hitl = pytest.mark.skipif(not hitl_available(), reason="human-in-the-loop needs Airflow 3.1+")


def test_human_gate_is_the_registry_sensor_without_hitl() -> None:
    gate = human_approval(
        task_id="approve", model_package_arn=PACKAGE, summary="s", deferrable=True, poll_interval=5
    )
    expected = "HumanApprovalOperator" if hitl_available() else "ModelApprovalSensor"
    assert type(gate).__name__ == expected


@needs_hitl
def test_hitl_form_carries_the_evaluation_and_parks_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow.providers.standard.operators.hitl as hitl

    written: dict[str, Any] = {}
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: written.update(kw))
    summary = evaluation_summary(PACKAGE, "0.9712", min_score=0.9)
    op = human_approval(
        task_id="approve", model_package_arn=PACKAGE, summary=summary, deferrable=False, poll_interval=5
    )
    ti = types.SimpleNamespace(id="0199", map_index=-1)
    with pytest.raises(BaseException) as parked:  # TaskAwaitingInput on 3.3, TaskDeferred on 3.1/3.2
        op.execute({"task_instance": ti, "ti": ti})
    assert type(parked.value).__name__ in ("TaskAwaitingInput", "TaskDeferred")
    assert written["options"] == ["Approve", "Reject"]
    assert "| accuracy | 0.9712 |" in written["body"] and PACKAGE in written["body"]
    assert "reason" in written["params"]


@needs_hitl
@pytest.mark.parametrize(
    ("chosen", "status", "skipped"),
    [("Approve", "Approved", []), ("Reject", "Rejected", ["deploy"])],
)
def test_hitl_answer_becomes_the_package_status(
    sagemaker: Any, monkeypatch: pytest.MonkeyPatch, chosen: str, status: str, skipped: list[str]
) -> None:
    client, stub = sagemaker
    op = _with_deploy(
        human_approval(
            task_id="approve", model_package_arn=PACKAGE, summary="s", deferrable=False, poll_interval=5
        )
    )
    recorded = _Recorded()
    recorded.patch(op)
    monkeypatch.setattr(
        "airflow_dl_provider.operators.human_approval.SageMakerJobHook",
        lambda **_: types.SimpleNamespace(conn=client),
    )
    verdict = "approved" if chosen == "Approve" else "rejected"
    reason = f"{verdict} by Maria in Airflow: checked the confusion matrix"
    _expect_update(stub, status, reason)
    context = {**recorded.context, "task": op}
    event = {
        "chosen_options": [chosen],
        "params_input": {"reason": "checked the confusion matrix"},
        "responded_at": dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc),
        "responded_by_user": {"id": "7", "name": "Maria"},
    }

    result = op.execute_complete(context, event)

    assert (result["decision"], result["approval_status"], result["reason"]) == (verdict, status, reason)
    assert result["skipped"] == skipped and recorded.skipped == skipped


def test_decide_leaves_the_status_to_the_gate_that_follows(sagemaker: Any) -> None:
    from airflow_dl_provider.operators.evaluation import ChampionChallengerOperator

    client, _ = sagemaker  # no stubbed response: an UpdateModelPackage call would fail the test
    op = ChampionChallengerOperator(
        task_id="decide",
        challenger_package_arn=PACKAGE,
        challenger_score="0.95",
        champion_score="0.90",
        metric="accuracy",
        update_package=False,
        region_name="us-east-1",
    )
    use(op, client)
    assert op.execute({"run_id": "manual__1"})["decision"] == "promoted"
