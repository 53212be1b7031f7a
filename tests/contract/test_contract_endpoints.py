"""EndpointDeployOperator on the AWS path: endpoints are asynchronous, their deletes too; deferred, killed."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.operators.endpoints import EndpointDeployOperator
from airflow_dl_provider.sensors.job import SageMakerJobSensor
from airflow_dl_provider.triggers.job import SageMakerJobTrigger
from tests.contract.deferral import first_event, run_deferred, task_deferred
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


# -- deferred, killed, linked ------------------------------------------------------------------------------


def test_deploy_defers_through_the_trigger_and_resumes(aws: Aws, task_context: Any) -> None:
    context = task_context(task_id="deploy")
    event, result = run_deferred(lambda: _operator(aws, deferrable=True), context)

    assert event == {"status": "success", "job_name": ENDPOINT, "message": f"Endpoint {ENDPOINT} InService"}
    assert isinstance(result, dict), result
    assert (result["action"], result["status"]) == ("created", "InService")
    assert aws.service.count("CreateEndpoint") == 1
    assert context["ti"].pushed["sagemaker_dl_endpoint"]["console_fragment"] == f"endpoints/{ENDPOINT}"


def test_a_deferred_deploy_that_fails_resumes_with_the_failure_reason(aws: Aws, task_context: Any) -> None:
    aws.service.hosting.plan(failure_reason="CapacityError: no ml.m5.large capacity")
    event, result = run_deferred(lambda: _operator(aws, deferrable=True), task_context(task_id="deploy"))

    assert event["status"] == "error" and "CapacityError" in event["message"]
    assert isinstance(result, SageMakerJobError) and result.failure_reason.startswith("CapacityError")


def test_a_deferrable_deploy_already_in_service_does_not_defer(aws: Aws, task_context: Any) -> None:
    context = task_context(task_id="deploy")
    _operator(aws).execute(context)
    # The same deployment again: nothing to wait for, so no trigger.
    again = _operator(aws, deferrable=True).execute(context)
    assert again["action"] == "unchanged" and again["status"] == "InService"


def test_killed_while_creating_deletes_the_endpoint_it_created_once_the_service_allows(
    aws: Aws, task_context: Any
) -> None:
    op = _operator(aws, wait_for_completion=False)
    op.execute(task_context(task_id="deploy"))
    assert aws.service.hosting.endpoints[ENDPOINT].status == "Creating"

    op.on_kill()

    # SageMaker refuses DeleteEndpoint while Creating: the kill waited, then deleted, once.
    assert aws.service.requests("DeleteEndpoint") == [{"EndpointName": ENDPOINT}]
    assert aws.service.count("DeleteEndpoint", error="ValidationException") == 0
    assert aws.service.hosting.endpoints[ENDPOINT].status == "Deleting"


def test_a_kill_that_cannot_wait_long_enough_leaves_the_endpoint_and_says_so(
    aws: Aws, task_context: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_dl_provider.operators import endpoints

    monkeypatch.setattr(endpoints, "KILL_BUDGET_SECONDS", 0.05)
    aws.service.hosting.plan(polls=10**6)
    op = _operator(aws, wait_for_completion=False)
    op.execute(task_context(task_id="deploy"))

    op.on_kill()

    assert aws.service.count("DeleteEndpoint") == 0, "no call the service would refuse"
    logged = capsys.readouterr().out  # Airflow's task logger writes there
    assert f"Endpoint {ENDPOINT} is still Creating" in logged and "delete it once" in logged


def test_killed_while_deferred_rolls_its_update_back_to_the_previous_config(
    aws: Aws, task_context: Any
) -> None:
    first = _operator(aws, "v1").execute(task_context(task_id="deploy"))
    with pytest.raises(task_deferred()) as caught:
        _operator(aws, "v2", deferrable=True).execute(task_context("manual__2", task_id="deploy"))
    _, kwargs = caught.value.trigger.serialize()
    trigger = SageMakerJobTrigger(**kwargs)
    assert kwargs["undo"] == {
        "action": "restore",
        "fields": {"EndpointConfigName": first["endpoint_config_name"]},
    }

    asyncio.run(trigger.on_kill())

    # The update could not be cancelled: once it ended, the endpoint was updated back.
    updates = aws.service.requests("UpdateEndpoint")
    assert [u["EndpointConfigName"] for u in updates][-1] == first["endpoint_config_name"]
    assert len(updates) == 2 and aws.service.count("UpdateEndpoint", error="ValidationException") == 0
    for _ in range(5):  # the service finishes the rollback as it finishes any update
        aws.service.hosting.describe_endpoint(EndpointName=ENDPOINT)
    endpoint = aws.service.hosting.endpoints[ENDPOINT]
    assert (endpoint.status, endpoint.config) == ("InService", first["endpoint_config_name"])
    assert aws.service.count("DeleteEndpoint") == 0


def test_a_kill_never_touches_an_endpoint_this_try_did_not_change(aws: Aws, task_context: Any) -> None:
    context = task_context(task_id="deploy")
    _operator(aws).execute(context)
    unchanged = _operator(aws)
    assert unchanged.execute(context)["action"] == "unchanged"
    before = len(aws.service.calls)

    unchanged.on_kill()

    assert aws.service.calls[before:] == []


def test_a_sensor_on_an_endpoint_defers_and_succeeds_once_it_serves(aws: Aws, task_context: Any) -> None:
    aws.service.hosting.add_endpoint(ENDPOINT, "someone-elses-config", "Creating")
    sensor = SageMakerJobSensor(
        task_id="watch", job_kind="endpoint", job_name=ENDPOINT, poke_interval=0.01, deferrable=True
    )
    with pytest.raises(task_deferred()) as caught:
        sensor.execute(task_context(task_id="watch"))
    _, kwargs = caught.value.trigger.serialize()
    assert kwargs["undo"] is None and kwargs["absent"] == "waiting"

    event = first_event(SageMakerJobTrigger(**kwargs))

    assert event.payload["status"] == "success"
    assert sensor.execute_complete(task_context(task_id="watch"), event=event.payload) is None
    # A sensor starts nothing, so it never stops, deletes or updates anything.
    asyncio.run(SageMakerJobTrigger(**kwargs).on_kill())
    assert {c.operation for c in aws.service.calls} == {"DescribeEndpoint"}


# -- blue/green updates with auto-rollback -----------------------------------------------------------------


def _cloudwatch() -> Any:
    import boto3

    return boto3.client("cloudwatch", region_name="us-east-1")


def test_an_update_rolls_out_blue_green_guarded_by_the_new_fleets_alarms(aws: Aws, task_context: Any) -> None:
    from airflow_dl_provider.specs.deployment import Deployment

    _cloudwatch().put_metric_alarm(
        AlarmName="digits-p99",
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1e6,
        ComparisonOperator="GreaterThanThreshold",
    )
    deployment = Deployment("canary", 10, wait_seconds=300, alarms=["digits-p99"], max_latency_ms=500)
    _operator(aws, "v1").execute(task_context(task_id="deploy"))

    second = _operator(aws, "v2", deployment=deployment).execute(task_context("manual__2", task_id="deploy"))

    config = second["endpoint_config_name"]
    assert (second["action"], second["status"], second["traffic_shift"]) == ("updated", "InService", "CANARY")
    (update,) = aws.service.requests("UpdateEndpoint")
    routing = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 300,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    names = [a["AlarmName"] for a in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert names == ["digits-p99", f"{config}-Invocation5XXErrors", f"{config}-ModelLatency"]
    # The alarms the task created exist before the update starts, and watch the new config only.
    created = {a["AlarmName"]: a for a in _cloudwatch().describe_alarms(AlarmNames=names[1:])["MetricAlarms"]}
    assert set(created) == set(names[1:])
    assert {"Name": "EndpointConfigName", "Value": config} in created[f"{config}-ModelLatency"]["Dimensions"]
    assert created[f"{config}-ModelLatency"]["Threshold"] == 500_000
    described = aws.service.hosting.describe_endpoint(ENDPOINT)
    assert described["EndpointConfigName"] == config
    assert described["LastDeploymentConfig"] == update["DeploymentConfig"]


def test_an_update_an_alarm_rolled_back_fails_the_task_with_the_reason(aws: Aws, task_context: Any) -> None:
    from airflow_dl_provider.specs.deployment import Deployment

    first = _operator(aws, "v1").execute(task_context(task_id="deploy"))
    reason = "Deployment was rolled back: alarm digits-cfg-Invocation5XXErrors is in ALARM."
    aws.service.hosting.plan(rollback_reason=reason)
    op = _operator(aws, "v2", deployment=Deployment("linear", 50, wait_seconds=60))

    with pytest.raises(SageMakerJobError, match="was rolled back and it serves") as caught:
        op.execute(task_context("manual__2", task_id="deploy"))

    assert first["endpoint_config_name"] in str(caught.value) and reason in str(caught.value)
    assert "\n" not in str(caught.value)
    endpoint = aws.service.hosting.endpoints[ENDPOINT]
    assert (endpoint.status, endpoint.config) == ("InService", first["endpoint_config_name"])


def test_a_deferred_update_that_was_rolled_back_resumes_into_the_failure(aws: Aws, task_context: Any) -> None:
    from airflow_dl_provider.specs.deployment import Deployment

    _operator(aws, "v1").execute(task_context(task_id="deploy"))
    aws.service.hosting.plan(rollback_reason="Deployment was rolled back: alarm tripped.")

    event, result = run_deferred(
        lambda: _operator(aws, "v2", deferrable=True, deployment=Deployment()),
        task_context("manual__2", task_id="deploy"),
    )

    # The endpoint is InService again, so the trigger succeeds; the task sees whose config it serves.
    assert event["status"] == "success"
    assert isinstance(result, SageMakerJobError) and "rolled back" in str(result)


def test_an_alarm_cloudwatch_does_not_have_is_refused_before_the_update(aws: Aws, task_context: Any) -> None:
    from airflow_dl_provider.specs.deployment import Deployment

    _operator(aws, "v1").execute(task_context(task_id="deploy"))
    op = _operator(aws, "v2", deployment=Deployment(alarms=["no-such-alarm"]))

    with pytest.raises(
        ValueError, match=r"deploy: deployment\.alarms: no CloudWatch alarm named no-such-alarm"
    ) as caught:
        op.execute(task_context("manual__2", task_id="deploy"))

    assert "\n" not in str(caught.value)
    assert aws.service.count("UpdateEndpoint") == 0
