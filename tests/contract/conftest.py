"""The AWS path, played in process: an ordinary ``aws`` connection, moto's S3 and Logs, the fake SageMaker."""

from __future__ import annotations

import json
import types
from typing import TYPE_CHECKING, Any

import pytest

from tests.contract.fake_service import REGION, SageMakerService, serving

if TYPE_CHECKING:
    from collections.abc import Iterator

BUCKET = "contract-bucket"


class Aws(types.SimpleNamespace):
    """What a contract test holds: the service, moto's S3 and Logs clients, a bucket, botocore's pauses."""

    service: SageMakerService
    s3: Any
    logs: Any
    bucket: str
    pauses: list[float]

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def upload(self, key: str, body: bytes | str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return self.uri(key)

    def read(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def exists(self, uri: str) -> bool:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """``aws_default`` is a plain AWS connection (no ``backend`` extra): the operators take the AWS path."""
    import boto3
    from moto import mock_aws

    connection = {
        "conn_type": "aws",
        "login": "AKIACONTRACTTESTS000",
        "password": "contract-secret",
        "extra": {"region_name": REGION},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    service = SageMakerService(s3=None, logs=None)
    with mock_aws(), serving(service, monkeypatch) as pauses:
        service.s3 = boto3.client("s3", region_name=REGION)
        service.logs = boto3.client("logs", region_name=REGION)
        service.s3.create_bucket(Bucket=BUCKET)
        yield Aws(service=service, s3=service.s3, logs=service.logs, bucket=BUCKET, pauses=pauses)
    # A request the service would refuse, an operation it does not play, an answer off the model.
    assert service.problems == []
