"""The local backend answers missing jobs and resources, and deleting endpoints, as SageMaker does.

No runner or server is started: only the answers for what is not there, or is going away.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from airflow_dl_provider.backends.local import resources
from airflow_dl_provider.backends.local.client import LocalSageMakerClient
from airflow_dl_provider.backends.local.endpoint import LocalRuntimeClient
from airflow_dl_provider.jobs.engine import JobEngine
from airflow_dl_provider.jobs.kinds import JOB_KINDS

if TYPE_CHECKING:
    from pathlib import Path

ACCOUNT = "123456789012"
ENDPOINT_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/digits"


@pytest.fixture
def client(tmp_path: Path) -> LocalSageMakerClient:
    return LocalSageMakerClient(
        home=tmp_path / "home", endpoint_url="http://127.0.0.1:1", region="us-east-1", runner_env={}
    )


def _error(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return dict(caught.value.response["Error"])


# What SageMaker answers, written out (not read from the table).
JOBS = [
    ("training", "ValidationException", "Requested resource not found."),
    ("transform", "ValidationException", "Could not find requested job with name nope"),
    ("tuning", "ResourceNotFound", "Amazon SageMaker can't find a tuning job with name nope"),
]


@pytest.mark.parametrize(("key", "code", "message"), JOBS)
def test_a_missing_job_is_answered_per_api(
    client: LocalSageMakerClient, key: str, code: str, message: str
) -> None:
    kind = JOB_KINDS[key]
    error = _error(getattr(client, kind.describe_method), **{kind.name_field: "nope"})
    assert error == {"Code": code, "Message": message}
    # ... and the engine, which reads the same table, takes it for "no such job".
    assert JobEngine(kind, client).describe("nope") is None


@pytest.mark.parametrize("key", sorted(set(JOB_KINDS) - {"processing"}))
def test_every_local_kind_answers_missing_jobs_as_its_api(client: LocalSageMakerClient, key: str) -> None:
    kind = JOB_KINDS[key]
    assert JobEngine(kind, client).describe("nope") is None
    assert JobEngine(kind, client).stop("nope") is False


def test_missing_resources_are_answered_with_their_arn(client: LocalSageMakerClient) -> None:
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    assert _error(client.describe_model, ModelName="Digits-M") == {
        "Code": "ValidationException",
        "Message": f'Could not find model "{arn}:model/digits-m".',
    }
    assert _error(client.describe_endpoint_config, EndpointConfigName="c") == {
        "Code": "ValidationException",
        "Message": f'Could not find endpoint configuration "{arn}:endpoint-config/c".',
    }
    assert _error(client.describe_endpoint, EndpointName="digits") == {
        "Code": "ValidationException",
        "Message": f'Could not find endpoint "{ENDPOINT_ARN}".',
    }
    assert _error(client.describe_model_package_group, ModelPackageGroupName="g") == {
        "Code": "ValidationException",
        "Message": f"ModelPackageGroup {arn}:model-package-group/g does not exist.",
    }
    assert _error(client.describe_model_package, ModelPackageName="g/1") == {
        "Code": "ValidationException",
        "Message": f"ModelPackage {arn}:model-package/g/1 does not exist.",
    }
    # UpdateEndpoint with a config that is not there names the config, not the endpoint.
    client.resources.create("endpoint", "digits", _endpoint_record("InService"))
    assert _error(client.update_endpoint, EndpointName="digits", EndpointConfigName="c2")["Message"] == (
        f'Could not find endpoint configuration "{arn}:endpoint-config/c2".'
    )


def test_invoking_a_missing_endpoint_is_a_validation_error(tmp_path: Path) -> None:
    runtime = LocalRuntimeClient(tmp_path / "home")
    assert _error(runtime.invoke_endpoint, EndpointName="digits", Body=b"1") == {
        "Code": "ValidationError",
        "Message": f"Endpoint digits of account {ACCOUNT} not found.",
    }


# -- DeleteEndpoint is asynchronous -------------------------------------------------------------------


def _endpoint_record(status: str) -> dict[str, Any]:
    # No server process: _pid None. The record is what create_endpoint and the server write.
    return {
        "EndpointName": "digits",
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": "c",
        "EndpointStatus": status,
    }


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    now = types.SimpleNamespace(value=1_000_000.0)
    monkeypatch.setattr(resources, "time", types.SimpleNamespace(time=lambda: now.value))
    return now


def test_a_deleted_endpoint_is_deleting_for_a_moment_then_gone(
    client: LocalSageMakerClient, clock: types.SimpleNamespace
) -> None:
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    client.resources.create(
        "endpoint-config", "c", {"EndpointConfigName": "c", "ProductionVariants": [variant]}
    )
    client.resources.create("endpoint", "digits", _endpoint_record("Failed"))
    assert client.delete_endpoint(EndpointName="digits") == {}

    assert client.describe_endpoint(EndpointName="digits")["EndpointStatus"] == "Deleting"
    refused = {
        "Code": "ValidationException",
        "Message": f'Cannot update in-progress endpoint "{ENDPOINT_ARN}".',
    }
    assert _error(client.update_endpoint, EndpointName="digits", EndpointConfigName="c") == refused
    assert _error(client.delete_endpoint, EndpointName="digits") == refused
    assert _error(client.create_endpoint, EndpointName="digits", EndpointConfigName="c") == {
        "Code": "ValidationException",
        "Message": f'Cannot create already existing endpoint "{ENDPOINT_ARN}".',
    }
    assert (
        _error(LocalRuntimeClient(client.store.home).invoke_endpoint, EndpointName="digits", Body=b"1")[
            "Code"
        ]
        == "ValidationError"
    )

    clock.value += 3600
    assert _error(client.describe_endpoint, EndpointName="digits") == {
        "Code": "ValidationException",
        "Message": f'Could not find endpoint "{ENDPOINT_ARN}".',
    }
    assert client.resources.get("endpoint", "digits") is None
    assert client.resources.all("endpoint") == []
