"""Data arrival on the embedded local server: an upload under the prefix fires the watcher's trigger.

The server's S3 sends the bucket's notifications to its own SQS queue, as S3 does on AWS; the trigger
is the one the pipeline Asset's watcher runs in the triggerer, reading through the ``aws_default``
connection the local backend set up.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import boto3

from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.pipelines.arrival import ArrivalConfig, arrival_trigger, connect_local_queue

if TYPE_CHECKING:
    from tests.conftest import LocalBackend

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
# Far beyond a receive on a loaded machine; only a trigger that never fires meets it.
DEADLINE_SECONDS = 60


def _config(backend: LocalBackend, queue: str) -> Any:
    from airflow_dl_provider.pipelines.config import PipelineConfig

    return PipelineConfig.model_validate(
        {
            "pipeline": "arrivals",
            "role_arn": ROLE_ARN,
            "bucket": backend.bucket,
            "data": {"source": f"s3://{backend.bucket}/incoming/arrivals/data.csv"},
            "training": {"image_uri": "local/train:latest"},
            "arrival": {
                "prefix": "incoming/arrivals/",
                # The URL the stacks output: the local server answers it as SQS would.
                "queue_url": f"https://sqs.us-east-1.amazonaws.com/123456789012/{queue}",
                "wait_seconds": 1,
                "poll_interval_seconds": 0.2,
            },
        }
    )


def _sqs(backend: LocalBackend) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=backend.endpoint,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_CREDENTIALS["login"],
        aws_secret_access_key=LOCAL_CREDENTIALS["password"],
    )


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def test_an_upload_under_the_prefix_fires_the_watcher_and_one_outside_does_not(
    local_backend: LocalBackend,
) -> None:
    queue = f"arrival-{local_backend.bucket}"
    config = _config(local_backend, queue)
    sqs = _sqs(local_backend)
    queue_arn = connect_local_queue(config, local_backend.s3, sqs)
    assert queue_arn.endswith(f":{queue}")
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{local_backend.bucket}"

    local_backend.upload("elsewhere/arrivals/ignored.csv", "x\n")
    local_backend.upload("incoming/arrivals/new batch.csv", "label\n1\n")

    event = asyncio.run(asyncio.wait_for(_first_event(arrival_trigger(config)), DEADLINE_SECONDS))

    assert event == {
        "status": "success",
        "bucket": local_backend.bucket,
        "keys": ["incoming/arrivals/new batch.csv"],
    }
    # What it read is gone (the test message too); nothing else was ever queued.
    left = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_the_config_names_the_queue_the_local_server_creates() -> None:
    arrival = ArrivalConfig(prefix="in/", queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/dl-in")

    assert (arrival.queue_name, arrival.region) == ("dl-in", "eu-west-1")
