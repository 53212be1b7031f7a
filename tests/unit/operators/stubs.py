"""What the request tests share: a stubbed boto3 SageMaker client swapped into an operator's hook."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"


def sagemaker_client() -> Any:
    return boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def use(op: Any, client: Any) -> None:
    # hook and hook.conn are cached properties: seeding the instance dict swaps the SageMaker client only.
    # The local hook builds S3 and logs from its own client's endpoint, so they are built before the swap.
    _ = op.hook.s3, op.hook.logs
    op.hook.__dict__["conn"] = client


def not_found(stub: Any, method: str, message: str, **params: Any) -> None:
    stub.add_client_error(method, "ValidationException", message, expected_params=params)
