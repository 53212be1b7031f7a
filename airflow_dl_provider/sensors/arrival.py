"""Airflow 2.x's stand-in for the Asset watcher: wait, deferred, for objects newer than the last ones seen.

Each run of the ``dl_arrival_<pipeline>`` sensor DAG waits for keys under the prefix whose LastModified
is after the newest key the previous run saw (the first run: after it started), records the newest, and
the next task triggers the pipeline. Nothing is moved or tagged in the bucket.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

try:
    from airflow.providers.common.compat.sdk import AirflowException
except ImportError:  # common-compat before 1.8
    from airflow.exceptions import AirflowException

if TYPE_CHECKING:
    from collections.abc import Iterable

NEWEST = "newest_last_modified"
KEYS = "keys"


def _moment(value: Any) -> datetime:
    # LastModified is a datetime from boto3; a trigger event may hand it back as an ISO string.
    return value if isinstance(value, datetime) else pendulum.parse(str(value))  # type: ignore[return-value]


def new_files(files: Iterable[dict[str, Any]], since: datetime) -> list[dict[str, Any]]:
    """The listed objects modified after ``since``, oldest first.

    :param files: ``list_objects_v2`` entries (``Key``, ``LastModified``).
    """
    return sorted(
        (f for f in files if _moment(f["LastModified"]) > since), key=lambda f: _moment(f["LastModified"])
    )


class NewDataSensor(S3KeySensor):
    """Wait for objects under ``prefix`` in ``bucket_name`` newer than those the previous run saw.

    Pushes ``keys`` (the new keys) and ``newest_last_modified`` (ISO 8601) to XCom.

    :param prefix: the key prefix uploads arrive under, ending in ``/``.
    :param bucket_name: the bucket.
    """

    def __init__(self, *, prefix: str, bucket_name: str, **kwargs: Any) -> None:
        super().__init__(
            bucket_key=f"{prefix}*",
            bucket_name=bucket_name,
            wildcard_match=True,
            check_fn=self.has_new_files,
            metadata_keys=["Key", "LastModified"],
            **kwargs,
        )
        self.prefix = prefix

    def has_new_files(self, files: list[dict[str, Any]], **context: Any) -> bool:
        """``check_fn``: whether ``files`` hold keys newer than the last seen; records them if so."""
        ti = context["ti"]
        seen = ti.xcom_pull(task_ids=self.task_id, key=NEWEST, include_prior_dates=True)
        since = _moment(seen) if seen else context["dag_run"].start_date
        fresh = new_files(files, since)
        if not fresh:
            return False
        ti.xcom_push(key=KEYS, value=[f["Key"] for f in fresh])
        ti.xcom_push(key=NEWEST, value=_moment(fresh[-1]["LastModified"]).isoformat())
        self.log.info("%d new object(s) under s3://%s/%s", len(fresh), self.bucket_name, self.prefix)
        return True

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        # The Amazon provider MWAA pins for 2.11 (9.8.0) calls check_fn without the context it needs.
        if event["status"] == "error":
            raise AirflowException(event["message"])
        if event["status"] == "running" and not self.has_new_files(event["files"], **context):
            self._defer()
