"""The capture reader reads what the endpoint writes: SageMaker's layout and format, hour by hour."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local.endpoint import capture_key, capture_record
from airflow_dl_provider.drift.capture import capture_files, capture_hour, capture_rows

if TYPE_CHECKING:
    from collections.abc import Iterator

CAPTURE = {
    "DestinationS3Uri": "s3://capture-bucket/monitoring/capture",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
}


@pytest.fixture
def s3() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="capture-bucket")
        yield client


def _captured(
    s3: Any, when: dt.datetime, body: str, variant: str = "AllTraffic", endpoint: str = "digits"
) -> str:
    bucket, key = capture_key(CAPTURE["DestinationS3Uri"], endpoint, variant, when)
    line = json.dumps(capture_record(CAPTURE, ("text/csv", body.encode()), ("text/csv", b"7\n")))
    s3.put_object(Bucket=bucket, Key=key, Body=(line + "\n").encode())
    return f"s3://{bucket}/{key}"


def test_the_files_of_an_endpoint_are_listed_by_hour_and_read_as_rows(s3: Any) -> None:
    hour = dt.datetime(2026, 12, 1, 9, 15, tzinfo=dt.timezone.utc)
    late = _captured(s3, hour + dt.timedelta(hours=1), "4,5,6\n")
    early = _captured(s3, hour, "1,2,3\n")
    _captured(s3, hour, "9,9,9\n", endpoint="another")
    s3.put_object(Bucket="capture-bucket", Key="monitoring/capture/digits/README.txt", Body=b"not capture")

    files = capture_files(s3, CAPTURE["DestinationS3Uri"], "digits")

    assert files == [early, late]
    assert capture_hour(early.split("/", 3)[3]) == hour.replace(minute=0)
    rows = list(capture_rows(s3, files, columns=["a", "b", "c"]))
    assert rows == [{"a": "1", "b": "2", "c": "3"}, {"a": "4", "b": "5", "c": "6"}]
    assert list(capture_rows(s3, files, columns=["label"], capture="output")) == [{"label": "7"}] * 2


def test_a_window_keeps_only_its_hours_and_a_variant_only_its_own(s3: Any) -> None:
    hour = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)
    _captured(s3, hour - dt.timedelta(hours=1), "0,0,0\n")
    inside = _captured(s3, hour, "1,1,1\n")
    _captured(s3, hour, "2,2,2\n", variant="Shadow")
    _captured(s3, hour + dt.timedelta(hours=1), "3,3,3\n")

    files = capture_files(
        s3,
        CAPTURE["DestinationS3Uri"],
        "digits",
        variant="AllTraffic",
        since=hour + dt.timedelta(minutes=30),
        until=hour + dt.timedelta(hours=1),
    )

    assert files == [inside]
