"""The provider's connection type: Test Connection on both backends, the local one without STS."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING

import pytest

from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import LocalBackend


def _connection(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    conn = {"conn_type": "dl_sagemaker", **LOCAL_CREDENTIALS, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_DL_TEST", json.dumps(conn))


@pytest.fixture
def no_sts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any STS client built while the test runs: the local backend must never ask AWS who we are."""
    import boto3.session

    built: list[str] = []
    original = boto3.session.Session.client

    def client(self: object, service_name: str, *args: object, **kwargs: object) -> object:
        built.append(service_name)
        if service_name == "sts":
            raise AssertionError("STS client built for a local connection")
        return original(self, service_name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(boto3.session.Session, "client", client)
    return built


def test_local_test_connection_asks_the_embedded_server(
    local_backend: LocalBackend, monkeypatch: pytest.MonkeyPatch, no_sts: list[str]
) -> None:
    _connection(
        monkeypatch, backend="local", endpoint_url=local_backend.endpoint, local_home=str(local_backend.home)
    )

    ok, message = SageMakerJobHook(aws_conn_id="dl_test").test_connection()

    assert ok, message
    assert message.startswith(f"local: the embedded S3 server on {local_backend.endpoint} answers")
    assert str(local_backend.home) in message
    assert "s3" in no_sts and "sts" not in no_sts


def test_local_test_connection_fails_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_sts: list[str]
) -> None:
    from airflow_dl_provider.backends.local.processes import free_port

    _connection(
        monkeypatch, backend="local", endpoint_url=f"http://127.0.0.1:{free_port()}", local_home=str(tmp_path)
    )

    ok, message = SageMakerJobHook(
        aws_conn_id="dl_test", config={"retries": {"max_attempts": 1}}
    ).test_connection()

    assert not ok
    assert "the embedded S3 server does not answer" in message and "airflow-dl local up" in message
    assert "\n" not in message


def test_local_test_connection_refuses_an_endpoint_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, backend="local", endpoint_url="https://s3.amazonaws.com")

    ok, message = SageMakerJobHook(aws_conn_id="dl_test").test_connection()

    assert not ok
    assert message.startswith(
        "local: the local backend needs the connection extra 'endpoint_url' on 127.0.0.1"
    )


def test_an_unknown_backend_is_one_line_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, backend="sagemaker")

    ok, message = SageMakerJobHook(aws_conn_id="dl_test").test_connection()

    assert not ok
    assert message == "connection 'dl_test' extra 'backend' is 'sagemaker'; use one of aws, local"


def test_aws_test_connection_is_the_amazon_providers_sts_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    _connection(monkeypatch, backend="aws")
    monkeypatch.setattr(AwsGenericHook, "test_connection", lambda self: (True, "UserId='AIDA...'"))

    assert SageMakerJobHook(aws_conn_id="dl_test").test_connection() == (True, "aws: UserId='AIDA...'")


def test_the_connection_type_does_not_warn_it_is_not_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(monkeypatch, backend="aws")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = SageMakerJobHook(aws_conn_id="dl_test").conn_config

    assert config.conn_type == "dl_sagemaker"
    assert config.aws_access_key_id == LOCAL_CREDENTIALS["login"]
