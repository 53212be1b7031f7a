"""Every job operator's execute() on the AWS path, against the service's own behaviour.

Each kind runs end to end through real botocore clients: the not-found answer before create, one
Create, several polls, the end; deferred through the trigger; failed with its FailureReason; retried
without a second job; throttled and still done; stopped when the task is killed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.naming import deterministic_job_name
from tests.contract.deferral import run_deferred
from tests.contract.job_cases import CASES, JobCase

if TYPE_CHECKING:
    from pathlib import Path

    from tests.contract.conftest import Aws


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> JobCase:
    return request.param


def _name(case: JobCase, op: Any) -> str:
    from airflow_dl_provider.jobs.kinds import JOB_KINDS

    return deterministic_job_name(
        "dl_test", op.task_id, "manual__1", max_length=JOB_KINDS[case.key].max_name_length
    )


def test_create_polls_and_completes(aws: Aws, tmp_path: Path, task_context: Any, case: JobCase) -> None:
    op = case.build(aws, tmp_path)
    context = task_context(task_id=op.task_id)
    result = op.execute(context)

    service = aws.service
    name = _name(case, op)
    assert result["job_name"] == name == op.job_name
    assert result["status"] == case.completed
    assert result["job_arn"] == service.jobs.get(case.noun, name).arn
    assert service.count(f"Create{case.noun}") == 1
    # The first Describe met the service's real not-found answer, and the operator created the job.
    first = service.calls[[c.operation for c in service.calls].index(f"Describe{case.noun}")]
    assert first.error is not None and first.params == {f"{case.noun}Name": name}
    assert service.jobs.get(case.noun, name).describes > 3, "the job was seen running over several polls"
    case.done(aws, result)
    assert context["ti"].pushed["sagemaker_dl_job"]["region_name"] == "us-east-1"


def test_deferred_through_the_trigger(aws: Aws, tmp_path: Path, task_context: Any, case: JobCase) -> None:
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    event, result = run_deferred(lambda: case.build(aws, tmp_path, deferrable=True), context)

    assert event["status"] == "success", event
    assert not isinstance(result, Exception), result
    assert result["status"] == case.completed
    assert aws.service.count(f"Create{case.noun}") == 1
    case.done(aws, result)


def test_failure_raises_with_the_failure_reason(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    reason = "ClientError: the input channel holds no records"
    aws.service.jobs.plan(case.noun, failure_reason=reason)
    op = case.build(aws, tmp_path)
    with pytest.raises(SageMakerJobError, match=reason) as caught:
        op.execute(task_context(task_id=op.task_id))
    assert caught.value.failure_reason == reason
    assert aws.service.count(f"Create{case.noun}") == 1


def test_failure_reaches_a_deferred_task(aws: Aws, tmp_path: Path, task_context: Any, case: JobCase) -> None:
    reason = "InternalServerError: we encountered an internal error; please try again"
    aws.service.jobs.plan(case.noun, failure_reason=reason)
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    event, result = run_deferred(lambda: case.build(aws, tmp_path, deferrable=True), context)
    assert event["status"] == "error" and reason in event["message"]
    assert isinstance(result, SageMakerJobError) and reason in str(result)


def test_retried_task_reattaches_and_creates_nothing(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    started = case.build(aws, tmp_path, wait_for_completion=False).execute(context)
    assert started["status"] in aws.service.jobs.get(case.noun, started["job_name"]).api.running

    # The worker died; Airflow retries the task with the same context, on a fresh operator.
    retried = case.build(aws, tmp_path).execute(context)
    again = case.build(aws, tmp_path).execute(context)

    assert retried["job_name"] == again["job_name"] == started["job_name"]
    assert retried["status"] == again["status"] == case.completed
    assert aws.service.count(f"Create{case.noun}") == 1
    case.done(aws, again)


def test_retry_after_a_failed_job_starts_the_next_attempt(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    aws.service.jobs.plan(case.noun, failure_reason="CapacityError: not enough capacity")
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    with pytest.raises(SageMakerJobError):
        case.build(aws, tmp_path).execute(context)
    aws.service.jobs.plan(case.noun)
    result = case.build(aws, tmp_path).execute(context)

    created = [params[f"{case.noun}Name"] for params in aws.service.requests(f"Create{case.noun}")]
    assert created == [created[0], f"{created[0]}-r2"]
    assert result["job_name"] == created[1] and result["status"] == case.completed


def test_throttled_describe_is_retried_by_botocore(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    op = case.build(aws, tmp_path)
    aws.service.throttle(f"Describe{case.noun}", times=2, after=2)
    result = op.execute(task_context(task_id=op.task_id))

    assert result["status"] == case.completed
    assert aws.service.count(f"Describe{case.noun}", error="ThrottlingException") == 2
    assert len(aws.pauses) == 2, "botocore backed off and retried each throttled call"
    assert aws.service.count(f"Create{case.noun}") == 1


def test_a_throttling_burst_while_waiting_is_survived(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    # More throttled calls in a row than botocore retries: the job is running and billed, so the
    # wait must poll again later rather than fail the task (a retry would only reattach).
    op = case.build(aws, tmp_path)
    aws.service.throttle(f"Describe{case.noun}", times=8, after=3)
    result = op.execute(task_context(task_id=op.task_id))

    assert result["status"] == case.completed
    assert aws.service.count(f"Describe{case.noun}", error="ThrottlingException") == 8
    assert aws.service.count(f"Create{case.noun}") == 1


def test_a_throttling_burst_in_the_triggerer_is_survived(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    # Three Describes before the task defers (not found, created, state before deferring): the
    # burst lands on the trigger's polls.
    aws.service.throttle(f"Describe{case.noun}", times=8, after=3)
    event, result = run_deferred(lambda: case.build(aws, tmp_path, deferrable=True), context)

    assert event["status"] == "success", event
    assert not isinstance(result, Exception), result
    assert aws.service.count(f"Describe{case.noun}", error="ThrottlingException") == 8


def test_killed_task_stops_its_job(aws: Aws, tmp_path: Path, task_context: Any, case: JobCase) -> None:
    aws.service.jobs.plan(case.noun, polls=None)  # runs until stopped
    op = case.build(aws, tmp_path)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            op.execute(task_context(task_id=op.task_id))
        except BaseException as err:
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    while not (op.job_name and aws.service.count(f"Describe{case.noun}") >= 3):
        worker.join(0.01)
        assert worker.is_alive(), outcome
    op.on_kill()  # what Airflow calls on SIGTERM
    worker.join(10)

    assert not worker.is_alive(), "the task kept waiting after on_kill"
    assert aws.service.requests(f"Stop{case.noun}") == [{f"{case.noun}Name": op.job_name}]
    error = outcome["error"]
    assert isinstance(error, SageMakerJobError) and error.status == case.stopped
    # A second SIGTERM sends nothing for a job that has ended.
    op.on_kill()
    assert aws.service.count(f"Stop{case.noun}") == 1


LOGGED = [
    case for case in CASES if case.key != "tuning"
]  # a tuning job's trials log, the tuning job does not


@pytest.mark.parametrize("case", LOGGED, ids=str)
@pytest.mark.parametrize("deferrable", [False, True], ids=["waiting", "deferred"])
def test_every_log_line_reaches_the_task_log_once(
    aws: Aws, tmp_path: Path, task_context: Any, task_log: Any, case: JobCase, deferrable: bool
) -> None:
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    if deferrable:
        _event, result = run_deferred(lambda: case.build(aws, tmp_path, deferrable=True), context)
    else:
        result = case.build(aws, tmp_path).execute(context)

    job = aws.service.jobs.get(case.noun, result["job_name"])
    streams = aws.service.jobs.streams(job)
    for line in job.plan.log_lines:
        copied = [m for m in task_log.messages if m.endswith(f"] {line}")]
        assert len(copied) == len(streams), (line, copied, streams)


def test_a_job_the_service_stopped_at_max_runtime_says_so(
    aws: Aws, tmp_path: Path, task_context: Any
) -> None:
    from tests.contract.job_cases import training

    aws.service.jobs.plan("TrainingJob", stopped_by="MaxRuntimeExceeded")
    op = training(aws, tmp_path)
    with pytest.raises(SageMakerJobError, match="MaxRuntimeExceeded") as caught:
        op.execute(task_context(task_id=op.task_id))
    assert caught.value.status == "Stopped"
    assert aws.service.count("StopTrainingJob") == 0, "nobody asked for the stop"
