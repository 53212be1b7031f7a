"""Data arrival starts the pipeline: an upload under the config's ``arrival.prefix`` schedules a run.

On Airflow 3 the pipeline DAG is scheduled on an Asset whose ``AssetWatcher`` reads the SQS queue the
bucket's S3 event notifications feed (:class:`~airflow_dl_provider.triggers.arrival.DataArrivalTrigger`).
Airflow 2 has no watchers: a small sensor DAG ``dl_arrival_<pipeline>`` waits, deferred, for new keys
under the prefix (:class:`~airflow_dl_provider.sensors.arrival.NewDataSensor`) and triggers the
pipeline. The stacks create the queue, its policy and the notification (``docs/arrival.rst``);
:func:`connect_local_queue` does the same on the embedded local server.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_dl_provider.service_behaviour import (
    SQS_MAX_VISIBILITY_TIMEOUT_SECONDS,
    SQS_MAX_WAIT_SECONDS,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_dl_provider.pipelines.config import PipelineConfig

# A queue URL as SQS answers it; the stacks' ArrivalQueueUrl output is one.
QUEUE_URL = r"^https://sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/(\d{12})/([A-Za-z0-9_-]{1,80})$"


class ArrivalConfig(BaseModel):
    """``arrival:``: start the pipeline when objects are uploaded under ``prefix`` in the pipeline bucket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(description="key prefix in the pipeline bucket, ending in /, e.g. incoming/digits/")
    queue_url: str = Field(description="the SQS queue the bucket notifies (the stack's ArrivalQueueUrl)")
    wait_seconds: int = Field(SQS_MAX_WAIT_SECONDS, ge=0, le=SQS_MAX_WAIT_SECONDS)
    visibility_timeout_seconds: int = Field(300, ge=0, le=SQS_MAX_VISIBILITY_TIMEOUT_SECONDS)
    poll_interval_seconds: float = Field(
        5.0, gt=0, description="between empty receives; the 2.x sensor's pokes"
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith(("s3://", "/")) or not value.endswith("/") or value == "/":
            raise ValueError("must be a key prefix in the bucket ending in / (e.g. incoming/digits/)")
        return value

    @field_validator("queue_url")
    @classmethod
    def _queue_url(cls, value: str) -> str:
        if not re.match(QUEUE_URL, value):
            raise ValueError("must be an SQS queue URL: https://sqs.<region>.amazonaws.com/<account>/<name>")
        return value

    @property
    def queue_name(self) -> str:
        return self.queue_url.rsplit("/", 1)[-1]

    @property
    def region(self) -> str:
        return self.queue_url.split(".")[1]


def asset_name(config: PipelineConfig) -> str:
    return f"dl_arrival_{config.pipeline}"


def _arrival(config: PipelineConfig) -> ArrivalConfig:
    arrival = config.arrival
    if arrival is None:
        raise ValueError(f"{config.pipeline}: has no arrival section")
    return arrival


def arrival_trigger(config: PipelineConfig) -> Any:
    """The watcher's trigger: the config's queue, bucket, prefix and connection."""
    from airflow_dl_provider.triggers.arrival import DataArrivalTrigger

    watch = {**_arrival(config).model_dump(), "bucket": config.bucket}
    return DataArrivalTrigger(watch=watch, aws_conn_id=config.aws_conn_id)


def arrival_schedule(config: PipelineConfig) -> Any:
    """The pipeline DAG's ``schedule``: the watched Asset on Airflow 3; None on 2.x (the sensor DAG triggers it)."""
    try:
        from airflow.sdk import Asset, AssetWatcher
    except ImportError:  # Airflow 2.x
        return None
    arrival = _arrival(config)
    return Asset(
        name=asset_name(config),
        uri=f"s3://{config.bucket}/{arrival.prefix.rstrip('/')}",  # as Airflow normalizes it
        watchers=[AssetWatcher(name=f"{asset_name(config)}_queue", trigger=arrival_trigger(config))],
    )


def arrival_dags(config: PipelineConfig, config_path: Path) -> dict[str, Any]:
    """On Airflow 2.x the sensor DAG ``dl_arrival_<pipeline>``; nothing on 3 (the Asset's watcher starts runs)."""
    try:
        from airflow.sdk import AssetWatcher  # noqa: F401
    except ImportError:
        pass
    else:
        return {}
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator  # type: ignore[import-not-found,unused-ignore]

    from airflow_dl_provider.pipelines.templates import DAG, dag_arguments
    from airflow_dl_provider.sensors.arrival import KEYS, NewDataSensor

    arrival = _arrival(config)
    arguments = dag_arguments(config, config_path)
    with DAG(
        dag_id=asset_name(config),
        description=f"Start {config.dag_id} when new objects arrive under s3://{config.bucket}/{arrival.prefix}",
        schedule="@continuous",
        max_active_runs=1,  # what @continuous requires; each run waits for keys newer than the last
        **arguments,
    ) as dag:
        (
            NewDataSensor(
                task_id="wait_for_data",
                bucket_name=config.bucket,
                prefix=arrival.prefix,
                poke_interval=arrival.poll_interval_seconds,
                deferrable=True,
            )
            >> TriggerDagRunOperator(
                task_id="start_pipeline",
                trigger_dag_id=config.dag_id,
                conf={"arrived": "{{ ti.xcom_pull(task_ids='wait_for_data', key='" + KEYS + "') }}"},
            )
        )
    return {dag.dag_id: dag}


def queue_policy(queue_arn: str, bucket: str, account: str) -> dict[str, Any]:
    """The queue policy S3 needs to notify it: only this bucket, in this account, may send."""
    partition = queue_arn.split(":")[1]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BucketNotifiesQueue",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": f"arn:{partition}:s3:::{bucket}"},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        ],
    }


def connect_local_queue(config: PipelineConfig, s3: Any, sqs: Any) -> str:
    """On the embedded local server, what the stacks create on AWS: the queue with its policy, and the
    bucket's notification to it for objects created under the prefix. Returns the queue's ARN.

    The embedded server accepts a notification whatever the queue's policy says; S3 refuses one whose
    queue does not let it send, so the queue gets the stacks' policy before the notification is put.

    :param s3: an S3 client of the server. :param sqs: an SQS client of the server.
    """
    arrival = _arrival(config)
    queue_url = sqs.create_queue(QueueName=arrival.queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    account = queue_arn.split(":")[4]
    policy = queue_policy(queue_arn, config.bucket, account)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    s3.put_bucket_notification_configuration(
        Bucket=config.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": asset_name(config),
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": arrival.prefix}]}},
                }
            ]
        },
    )
    return str(queue_arn)
