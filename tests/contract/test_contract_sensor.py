"""The job sensor and trigger on the AWS path: every API's real not-found answer, running, ended."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.sensors.job import SageMakerJobSensor
from airflow_dl_provider.triggers.job import SageMakerJobTrigger
from tests.contract.deferral import first_event, run_deferred
from tests.contract.job_cases import CASES, JobCase, training

if TYPE_CHECKING:
    from pathlib import Path

    from tests.contract.conftest import Aws


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> JobCase:
    return request.param


def _sensor(case: JobCase, name: str) -> SageMakerJobSensor:
    return SageMakerJobSensor(task_id="watch", job_kind=case.key, job_name=name, poke_interval=0.01)


def test_sensor_waits_for_a_job_that_does_not_exist_yet_then_for_it_to_end(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    op = case.build(aws, tmp_path, wait_for_completion=False)
    context = task_context(task_id=op.task_id)
    name = deterministic_job_name("dl_test", op.task_id, "manual__1", max_length=op.job_kind.max_name_length)
    sensor = _sensor(case, name)

    # The upstream task has not created it: the service answers with its not-found message.
    assert sensor.poke(context) is False
    answered = [c.error for c in aws.service.calls if c.operation == f"Describe{case.noun}"]
    assert answered == [service_behaviour.NOT_FOUND[f"Describe{case.noun}"].code]

    op.execute(context)
    pokes = [sensor.poke(context) for _ in range(3)]
    assert pokes[0] is False
    assert pokes[-1] is True
    assert aws.service.jobs.get(case.noun, name).status == case.completed


def test_sensor_fails_with_the_failure_reason(
    aws: Aws, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    reason = "AlgorithmError: out of memory"
    aws.service.jobs.plan(case.noun, failure_reason=reason, polls=0)
    op = case.build(aws, tmp_path, wait_for_completion=False)
    context = task_context(task_id=op.task_id)
    name = op.execute(context)["job_name"]

    with pytest.raises(SageMakerJobError, match=reason):
        _sensor(case, name).poke(context)


def test_trigger_reports_a_job_that_does_not_exist(aws: Aws, case: JobCase) -> None:
    trigger = SageMakerJobTrigger(job_kind=case.key, job_name="never-created", poll_interval=0.01)
    event = first_event(trigger)
    assert event.payload == {
        "status": "error",
        "job_name": "never-created",
        "message": f"{case.noun} never-created does not exist",
    }


def test_deferred_task_past_max_wait_stops_its_job(aws: Aws, tmp_path: Path, task_context: Any) -> None:
    aws.service.jobs.plan("TrainingJob", polls=None)
    context = task_context(task_id="train")
    event, result = run_deferred(lambda: training(aws, tmp_path, deferrable=True, max_wait=0.05), context)

    assert event["status"] == "timeout"
    assert isinstance(result, SageMakerJobError) and "stopped it" in str(result)
    assert aws.service.count("StopTrainingJob") == 1
    assert aws.service.count("CreateTrainingJob") == 1


def test_waiting_task_past_max_wait_stops_its_job(aws: Aws, tmp_path: Path, task_context: Any) -> None:
    aws.service.jobs.plan("TrainingJob", polls=None)
    op = training(aws, tmp_path, max_wait=0.05)
    with pytest.raises(SageMakerJobError, match="after max_wait"):
        op.execute(task_context(task_id=op.task_id))
    assert aws.service.requests("StopTrainingJob") == [{"TrainingJobName": op.job_name}]
