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
