"""Deployment: the blue/green DeploymentConfig of UpdateEndpoint, its ranges and the new fleet's alarms."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_dl_provider.specs.deployment import Deployment, traffic_steps
from airflow_dl_provider.validation.requests import validate_request


def test_a_canary_becomes_the_services_deployment_config() -> None:
    spec = Deployment("canary", 10, wait_seconds=300, termination_wait_seconds=60, alarms=["p99"])

    config = spec.to_request("digits-abc")

    assert config == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 60,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": "p99"}, {"AlarmName": "digits-abc-Invocation5XXErrors"}]
        },
    }
    validate_request(
        "UpdateEndpoint",
        {"EndpointName": "digits", "EndpointConfigName": "digits-abc", "DeploymentConfig": config},
    )


def test_the_new_fleets_alarms_watch_only_the_new_config() -> None:
    alarms = Deployment(max_errors=2, max_latency_ms=250).own_alarms("digits", "AllTraffic", "digits-abc")

    assert [a["AlarmName"] for a in alarms] == ["digits-abc-Invocation5XXErrors", "digits-abc-ModelLatency"]
    errors, latency = alarms
    assert {d["Name"]: d["Value"] for d in errors["Dimensions"]} == {
        "EndpointName": "digits",
        "VariantName": "AllTraffic",
        "EndpointConfigName": "digits-abc",
    }
    assert (errors["Statistic"], errors["Threshold"]) == ("Sum", 2.0)
    # ModelLatency is in microseconds.
    assert (latency["Statistic"], latency["Threshold"]) == ("Average", 250_000.0)
    for alarm in alarms:
        validate_request("PutMetricAlarm", alarm, service="cloudwatch")
    assert Deployment(max_errors=None).own_alarms("d", "v", "c") == []


@pytest.mark.parametrize(
    ("routing", "steps"),
    [
        ({"Type": "ALL_AT_ONCE"}, [100]),
        ({"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20}}, [20, 100]),
        ({"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30}}, [30, 60, 90, 100]),
    ],
)
def test_traffic_moves_in_the_policys_steps(routing: dict[str, Any], steps: list[int]) -> None:
    assert traffic_steps(routing) == steps


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"traffic_shift": "rolling"}, "deployment.traffic_shift: 'ROLLING' is not one of"),
        ({"traffic_shift": "canary"}, r"deployment.traffic_percent \(CANARY\) must be a number from 1 to 50"),
        ({"traffic_shift": "canary", "traffic_percent": 60}, "from 1 to 50, got 60"),
        ({"traffic_shift": "linear", "traffic_percent": 5}, "from 10 to 50, got 5"),
        ({"wait_seconds": 3601}, "deployment.wait_seconds must be a number from 0 to 3600"),
        ({"termination_wait_seconds": -1}, "deployment.termination_wait_seconds"),
        ({"max_execution_seconds": 599}, "deployment.max_execution_seconds must be a number from 600"),
        (
            {
                "traffic_shift": "canary",
                "traffic_percent": 10,
                "wait_seconds": 400,
                "max_execution_seconds": 700,
            },
            r"must exceed the baking periods \(800 s\)",
        ),
        ({"alarms": [f"a{i}" for i in range(10)]}, "at most 10 alarms"),
    ],
)
def test_bad_deployments_fail_in_one_line_naming_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Deployment(**kwargs)
    assert "\n" not in str(caught.value)
