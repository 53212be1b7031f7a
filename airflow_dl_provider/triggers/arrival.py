"""Wait in the triggerer for S3's "object created" notifications on an SQS queue; fire with the new keys.

On Airflow 3 this is the trigger of the pipeline Asset's ``AssetWatcher``: each event it fires becomes an
asset event, and the pipeline DAG scheduled on that Asset starts. It reads the queue with the Amazon
provider's :class:`~airflow.providers.amazon.aws.hooks.sqs.SqsHook` (the same connection, region, verify
and botocore config as every other call), so the embedded local server's queue and SQS read the same;
its boto3 client runs in a worker thread, so the trigger needs no aiobotocore.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote_plus

from airflow.providers.amazon.aws.hooks.sqs import SqsHook

from airflow_dl_provider.service_behaviour import S3_TEST_EVENT, SQS_MAX_MESSAGES_PER_RECEIVE

try:  # Airflow 3: only an event trigger may watch an Asset
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent
except ImportError:  # Airflow 2.x has no watchers; the sensor DAG (sensors/arrival.py) stands in
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]
    from airflow.triggers.base import TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping


class Arrival(NamedTuple):
    """What one queue message says: S3's test message, and the new keys under the watched prefix."""

    test_event: bool
    keys: list[str]
    other_keys: int


def read_notification(body: str, bucket: str, prefix: str) -> Arrival:
    """The keys an S3 event notification reports as created in ``bucket`` under ``prefix``.

    Keys arrive URL-encoded ("red flower.jpg" as "red+flower.jpg"), and are decoded before the prefix is
    compared. A body that is not an S3 notification counts as neither ours nor a test message.

    :param body: the SQS message body.
    :param bucket: the pipeline's bucket; records of other buckets are not ours.
    :param prefix: the key prefix uploads arrive under.
    """
    try:
        event = json.loads(body)
    except ValueError:
        return Arrival(False, [], 0)
    if not isinstance(event, dict):
        return Arrival(False, [], 0)
    if event.get("Event") == S3_TEST_EVENT:
        return Arrival(True, [], 0)
    keys, others = [], 0
    for record in event.get("Records") or []:
        if not isinstance(record, dict):
            others += 1
            continue
        s3 = record.get("s3") or {}
        key = unquote_plus(str((s3.get("object") or {}).get("key", "")))
        created = str(record.get("eventName", "")).startswith("ObjectCreated:")
        if created and (s3.get("bucket") or {}).get("name") == bucket and key.startswith(prefix):
            keys.append(key)
        else:
            others += 1
    return Arrival(False, keys, others)


class Watch(NamedTuple):
    """What the trigger watches: the ``arrival`` config section's fields and the pipeline's bucket.

    :param queue_url: the queue S3 notifies (its URL, as ``GetQueueUrl`` answers).
    :param bucket: the bucket the uploads go to.
    :param prefix: the key prefix uploads arrive under.
    :param wait_seconds: ``WaitTimeSeconds`` of each ``ReceiveMessage`` (long polling, at most 20).
    :param visibility_timeout_seconds: ``VisibilityTimeout`` of each receive.
    :param poll_interval_seconds: between receives that found nothing.
    """

    queue_url: str
    bucket: str
    prefix: str
    wait_seconds: int = 20
    visibility_timeout_seconds: int = 300
    poll_interval_seconds: float = 5.0


class DataArrivalTrigger(BaseEventTrigger):
    """Long-poll the queue until an upload under the prefix is reported; fire ``{"status", "bucket", "keys"}``.

    Messages that report keys under the prefix, and S3's test message (sent when the notification is
    configured), are deleted; others (another prefix sharing the queue) are left for their reader and
    come back after the visibility timeout, then go to the dead-letter queue. Messages are deleted
    before the event fires: a triggerer that dies in between loses that event (at most once).

    :param watch: a :class:`Watch` as a mapping (what the trigger serializes to).
    :param aws_conn_id: the connection the queue is read with (its region, endpoint and config).
    """

    def __init__(self, *, watch: Mapping[str, Any], aws_conn_id: str | None = "aws_default") -> None:
        super().__init__()
        self.watch = Watch(**watch)
        self.aws_conn_id = aws_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path = f"{type(self).__module__}.{type(self).__qualname__}"
        return path, {"watch": self.watch._asdict(), "aws_conn_id": self.aws_conn_id}

    def hook(self) -> SqsHook:
        return SqsHook(aws_conn_id=self.aws_conn_id)

    def receive_once(self, client: Any) -> list[str]:
        """One ``ReceiveMessage``: the new keys under the prefix it reported (deleting what it read)."""
        watch = self.watch
        response = client.receive_message(
            QueueUrl=watch.queue_url,
            MaxNumberOfMessages=SQS_MAX_MESSAGES_PER_RECEIVE,
            WaitTimeSeconds=watch.wait_seconds,
            VisibilityTimeout=watch.visibility_timeout_seconds,
        )
        keys: list[str] = []
        read: list[dict[str, str]] = []
        for message in response.get("Messages", []):
            arrival = read_notification(message.get("Body", ""), watch.bucket, watch.prefix)
            if arrival.test_event or arrival.keys:
                read.append({"Id": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]})
            keys += arrival.keys
        if read:
            deleted = client.delete_message_batch(QueueUrl=watch.queue_url, Entries=read)
            for failure in deleted.get("Failed", []):
                # Not fatal: the message comes back after the visibility timeout and fires again.
                self.log.warning("could not delete message %s: %s", failure.get("Id"), failure.get("Message"))
        return keys

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = self.watch
        self.log.info(
            "waiting for uploads under s3://%s/%s on %s", watch.bucket, watch.prefix, watch.queue_url
        )
        # A boto3 client in a worker thread, as every trigger here: the long poll never blocks the loop.
        client = await asyncio.to_thread(lambda: self.hook().get_conn())
        while True:
            keys = await asyncio.to_thread(self.receive_once, client)
            if keys:
                self.log.info("%d new object(s) under s3://%s/%s", len(keys), watch.bucket, watch.prefix)
                yield TriggerEvent({"status": "success", "bucket": watch.bucket, "keys": sorted(set(keys))})
                return
            await asyncio.sleep(watch.poll_interval_seconds)
