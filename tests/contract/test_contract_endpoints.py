"""EndpointDeployOperator on the AWS path: endpoints are asynchronous, and their deletes are too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.operators.endpoints import EndpointDeployOperator
from tests.contract.job_cases import POLL, ROLE_ARN

if TYPE_CHECKING:
    from tests.contract.conftest import Aws

ENDPOINT = "Digits-Live"


def _operator(aws: Aws, version: str = "v1", **kwargs: Any) -> EndpointDeployOperator:
    args: dict[str, Any] = {
        "task_id": "deploy",
        "endpoint_name": ENDPOINT,
        "model_artifacts": aws.upload(f"models/{version}/model.tar.gz", b"model"),
        "role_arn": ROLE_ARN,
        "instance_type": "ml.m5.large",
        "data_capture_s3_uri": aws.uri("capture"),
        "poll_interval": POLL,
    }
    return EndpointDeployOperator(**{**args, **kwargs})


def _endpoint_calls(aws: Aws) -> list[tuple[str, str | None]]:
    return [(c.operation, c.error) for c in aws.service.calls if c.operation.endswith("Endpoint")]


def test_creates_and_waits_until_in_service(aws: Aws, task_context: Any) -> None:
    result = _operator(aws).execute(task_context(task_id="deploy"))

    service = aws.service
    assert result["action"] == "created" and result["status"] == "InService"
    # The service lower-cases the name in the ARN it mints.
    assert result["endpoint_arn"] == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/digits-live"
    assert result["model_name"] in service.hosting.models
    config = service.hosting.configs[result["endpoint_config_name"]]
    assert config["ProductionVariants"][0]["ModelName"] == result["model_name"]
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == aws.uri("capture")
    assert [service.count(op) for op in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint")] == [
        1,
        1,
        1,
    ]
    # Each Describe of a missing resource met that resource's real not-found answer first.
    for operation in ("DescribeModel", "DescribeEndpointConfig", "DescribeEndpoint"):
        assert service.calls[service.operations().index(operation)].error == "ValidationException"
    assert service.hosting.endpoints[ENDPOINT].steps > 2, "seen Creating over several polls"


def test_retried_deploy_changes_nothing(aws: Aws, task_context: Any) -> None:
    first = _operator(aws).execute(task_context(task_id="deploy"))
    again = _operator(aws).execute(task_context(task_id="deploy"))

    assert again["action"] == "unchanged" and again["status"] == "InService"
    assert again["endpoint_config_name"] == first["endpoint_config_name"]
    counts = [aws.service.count(op) for op in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint")]
    assert counts == [1, 1, 1]
    assert aws.service.count("UpdateEndpoint") == 0


def test_a_new_model_updates_the_endpoint(aws: Aws, task_context: Any) -> None:
    first = _operator(aws, "v1").execute(task_context(task_id="deploy"))
    second = _operator(aws, "v2").execute(task_context("manual__2", task_id="deploy"))

    assert second["action"] == "updated" and second["status"] == "InService"
    assert second["endpoint_config_name"] != first["endpoint_config_name"]
    assert aws.service.requests("UpdateEndpoint") == [
        {"EndpointName": ENDPOINT, "EndpointConfigName": second["endpoint_config_name"]}
    ]
    assert aws.service.hosting.endpoints[ENDPOINT].config == second["endpoint_config_name"]
    assert aws.service.count("CreateEndpoint") == 1


def test_an_update_waits_for_the_one_in_flight(aws: Aws, task_context: Any) -> None:
    _operator(aws, "v1").execute(task_context(task_id="deploy"))
    _operator(aws, "v2", wait_for_completion=False).execute(task_context("manual__2", task_id="deploy"))
    assert aws.service.hosting.endpoints[ENDPOINT].status == "Updating"

    third = _operator(aws, "v3").execute(task_context("manual__3", task_id="deploy"))

    assert third["action"] == "updated" and third["status"] == "InService"
    assert aws.service.count("UpdateEndpoint") == 2
    assert aws.service.count("UpdateEndpoint", error="ValidationException") == 0


def test_failed_creation_raises_with_the_failure_reason(aws: Aws, task_context: Any) -> None:
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    aws.service.hosting.plan(failure_reason=reason)
    with pytest.raises(SageMakerJobError, match="did not pass the ping health check") as caught:
        _operator(aws).execute(task_context(task_id="deploy"))
    assert caught.value.status == "Failed"


def test_a_failed_endpoint_is_recreated_once_its_delete_finishes(aws: Aws, task_context: Any) -> None:
    aws.service.hosting.add_endpoint(ENDPOINT, "old-config", "Failed", failure_reason="ping health check")

    result = _operator(aws).execute(task_context(task_id="deploy"))

    assert result["action"] == "created" and result["status"] == "InService"
    calls = _endpoint_calls(aws)
    delete, create = calls.index(("DeleteEndpoint", None)), calls.index(("CreateEndpoint", None))
    # Deleting over several polls, then the real not-found answer, and only then CreateEndpoint.
    between = calls[delete + 1 : create]
    assert ("DescribeEndpoint", None) in between
    assert between[-1] == ("DescribeEndpoint", "ValidationException")
    assert aws.service.count("CreateEndpoint", error="ValidationException") == 0
    assert aws.service.count("UpdateEndpoint") == 0


def test_an_endpoint_being_deleted_is_waited_out_never_updated(aws: Aws, task_context: Any) -> None:
    aws.service.hosting.add_endpoint(ENDPOINT, "old-config", "Deleting")

    result = _operator(aws).execute(task_context(task_id="deploy"))

    assert result["action"] == "created" and result["status"] == "InService"
    assert aws.service.count("UpdateEndpoint") == 0
    assert aws.service.count("DeleteEndpoint") == 0
    assert aws.service.requests("CreateEndpoint")[0]["EndpointName"] == ENDPOINT
    assert aws.service.count("CreateEndpoint") == 1, "created once, after the delete finished"


def test_throttled_describe_endpoint_is_survived(aws: Aws, task_context: Any) -> None:
    aws.service.throttle("DescribeEndpoint", times=2, after=1)
    result = _operator(aws).execute(task_context(task_id="deploy"))
    assert result["status"] == "InService"
    assert aws.service.count("DescribeEndpoint", error="ThrottlingException") == 2
    assert len(aws.pauses) == 2
