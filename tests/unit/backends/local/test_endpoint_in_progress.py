"""The local backend refuses DeleteEndpoint and UpdateEndpoint while an endpoint is being created or updated.

SageMaker cancels neither a creation nor an update; the local backend must not be kinder. A sleeping
process stands in for the endpoint server that is still starting.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from airflow_dl_provider.backends.local.client import LocalSageMakerClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/digits"
# What SageMaker answers, written out (not read from the table).
REFUSED = {"Code": "ValidationException", "Message": f'Cannot update in-progress endpoint "{ARN}".'}


@pytest.fixture
def client(tmp_path: Path) -> LocalSageMakerClient:
    client = LocalSageMakerClient(
        home=tmp_path / "home", endpoint_url="http://127.0.0.1:1", region="us-east-1", runner_env={}
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    for name in ("c", "d"):
        client.resources.create(
            "endpoint-config", name, {"EndpointConfigName": name, "ProductionVariants": [variant]}
        )
    return client


@pytest.fixture
def starting_server() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _error(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return dict(caught.value.response["Error"])


def _endpoint(client: LocalSageMakerClient, status: str, pending_pid: int | None) -> None:
    record = {
        "EndpointName": "digits",
        "EndpointArn": ARN,
        "EndpointConfigName": "c",
        "EndpointStatus": status,
    }
    client.resources.create("endpoint", "digits", {**record, "_pending_pid": pending_pid})


@pytest.mark.parametrize("status", ["Creating", "Updating"])
def test_an_endpoint_in_progress_takes_no_delete_and_no_update(
    client: LocalSageMakerClient, starting_server: int, status: str
) -> None:
    _endpoint(client, status, starting_server)

    assert _error(client.delete_endpoint, EndpointName="digits") == REFUSED
    assert _error(client.update_endpoint, EndpointName="digits", EndpointConfigName="d") == REFUSED
    assert client.resources.get("endpoint", "digits")["EndpointStatus"] == status  # nothing changed


def test_an_endpoint_whose_server_died_starting_can_be_deleted(client: LocalSageMakerClient) -> None:
    # Nothing is changing it any more: Describe says Failed, and the delete is taken.
    _endpoint(client, "Creating", None)
    assert client.delete_endpoint(EndpointName="digits") == {}
