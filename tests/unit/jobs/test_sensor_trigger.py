"""The job sensor and trigger read not-found per API, as the service answers it (a Stubber, real messages)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from airflow_dl_provider.jobs.engine import JobEngine
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.sensors.job import SageMakerJobSensor
from airflow_dl_provider.triggers.job import SageMakerJobTrigger

if TYPE_CHECKING:
    from collections.abc import Iterator

TRANSFORM = JOB_KINDS["transform"]
NAME = "dl-transform-0123456789"
# DescribeTransformJob's own answer for a name with no job.
MISSING = f"Could not find requested job with name {NAME}"


@pytest.fixture
def client() -> Iterator[tuple[Any, Stubber]]:
    sagemaker = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(sagemaker) as stub:
        yield sagemaker, stub
        stub.assert_no_pending_responses()


def _missing(stub: Stubber) -> None:
    stub.add_client_error(
        "describe_transform_job", "ValidationException", MISSING, expected_params={"TransformJobName": NAME}
    )


def _described(stub: Stubber, status: str) -> None:
    stub.add_response(
        "describe_transform_job",
        {
            "TransformJobName": NAME,
            "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{NAME}",
            "TransformJobStatus": status,
            "ModelName": "m",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}
            },
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "CreationTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        },
        {"TransformJobName": NAME},
    )


def test_sensor_waits_for_a_transform_job_that_does_not_exist_yet(client: Any) -> None:
    sagemaker, stub = client
    sensor = SageMakerJobSensor(task_id="watch", job_kind="transform", job_name=NAME, region_name="us-east-1")
    sensor.hook.__dict__["conn"] = sagemaker
    _missing(stub)
    assert sensor.poke({}) is False
    _described(stub, "InProgress")
    assert sensor.poke({}) is False
    _described(stub, "Completed")
    assert sensor.poke({}) is True


def test_trigger_reports_a_missing_transform_job_as_an_error_event(client: Any) -> None:
    sagemaker, stub = client
    trigger = SageMakerJobTrigger(job_kind="transform", job_name=NAME, poll_interval=0.01)
    trigger.__dict__["engine"] = JobEngine(TRANSFORM, sagemaker)
    _missing(stub)

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload == {
        "status": "error",
        "job_name": NAME,
        "message": f"TransformJob {NAME} does not exist",
    }


def test_sensor_pokes_again_when_throttled(client: Any) -> None:
    sagemaker, stub = client
    sensor = SageMakerJobSensor(task_id="watch", job_kind="transform", job_name=NAME, region_name="us-east-1")
    sensor.hook.__dict__["conn"] = sagemaker
    stub.add_client_error("describe_transform_job", "ThrottlingException", "Rate exceeded")
    assert sensor.poke({}) is False
    _described(stub, "Completed")
    assert sensor.poke({}) is True


def test_trigger_polls_again_when_throttled(client: Any) -> None:
    sagemaker, stub = client
    trigger = SageMakerJobTrigger(job_kind="transform", job_name=NAME, poll_interval=0.01)
    trigger.__dict__["engine"] = JobEngine(TRANSFORM, sagemaker)
    stub.add_client_error("describe_transform_job", "ThrottlingException", "Rate exceeded")
    _described(stub, "Completed")

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    assert asyncio.run(first_event()).payload["status"] == "success"


# -- the deferrable sensor ----------------------------------------------------------------------------


def _deferrable_sensor(sagemaker: Any) -> SageMakerJobSensor:
    sensor = SageMakerJobSensor(
        task_id="watch",
        job_kind="transform",
        job_name=NAME,
        region_name="us-east-1",
        deferrable=True,
        poke_interval=7,
        timeout=600,
    )
    sensor.hook.__dict__["conn"] = sagemaker
    return sensor


def test_a_deferrable_sensor_checks_once_then_defers_to_the_one_trigger(client: Any) -> None:
    from tests.contract.deferral import task_deferred

    sagemaker, stub = client
    _described(stub, "InProgress")
    with pytest.raises(task_deferred()) as caught:
        _deferrable_sensor(sagemaker).execute({})
    path, kwargs = caught.value.trigger.serialize()
    assert path == "airflow_dl_provider.triggers.job.SageMakerJobTrigger"
    assert (kwargs["job_kind"], kwargs["job_name"], kwargs["poll_interval"]) == ("transform", NAME, 7)
    # A sensor waits for a job that is not there yet, and never undoes anything it did not start.
    assert kwargs["absent"] == "waiting" and kwargs["undo"] is None
    assert kwargs["deadline"] is not None
    assert caught.value.method_name == "execute_complete"


def test_a_deferrable_sensor_on_a_finished_job_does_not_defer(client: Any) -> None:
    sagemaker, stub = client
    _described(stub, "Completed")
    assert _deferrable_sensor(sagemaker).execute({}) is None


def test_a_deferred_sensor_resumes_with_the_events_outcome(client: Any) -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout

    from airflow_dl_provider.exceptions import SageMakerJobError

    sagemaker, _ = client
    sensor = _deferrable_sensor(sagemaker)
    ok = {"status": "success", "job_name": NAME, "message": f"TransformJob {NAME} Completed"}
    assert sensor.execute_complete({}, event=ok) is None
    failed = {"status": "error", "job_name": NAME, "message": f"TransformJob {NAME} Failed: out of memory"}
    with pytest.raises(SageMakerJobError, match="Failed: out of memory"):
        sensor.execute_complete({}, event=failed)
    late = {"status": "timeout", "job_name": NAME, "message": f"TransformJob {NAME} still InProgress"}
    with pytest.raises(AirflowSensorTimeout, match="sensor timeout=600s"):
        sensor.execute_complete({}, event=late)


def test_a_trigger_without_undo_touches_nothing_when_killed(client: Any) -> None:
    sagemaker, _stub = client  # the Stubber fails on any call
    trigger = SageMakerJobTrigger(job_kind="transform", job_name=NAME, poll_interval=0.01)
    trigger.__dict__["engine"] = JobEngine(TRANSFORM, sagemaker)
    asyncio.run(trigger.on_kill())


def test_a_trigger_with_undo_stops_the_job_of_a_killed_deferred_task(client: Any) -> None:
    sagemaker, stub = client
    trigger = SageMakerJobTrigger(
        job_kind="transform", job_name=NAME, poll_interval=0.01, undo={"action": "stop"}
    )
    trigger.__dict__["engine"] = JobEngine(TRANSFORM, sagemaker)
    _described(stub, "InProgress")
    stub.add_response("stop_transform_job", {}, {"TransformJobName": NAME})
    asyncio.run(trigger.on_kill())
