"""The local blue/green rollout: the steps it takes, the alarms it evaluates, when it rolls back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local.rollout import AlarmWatch, FleetStats, roll_out, update_fields
from airflow_dl_provider.specs.deployment import Deployment

if TYPE_CHECKING:
    from collections.abc import Iterator

FLEET = {"EndpointName": "digits", "VariantName": "AllTraffic", "EndpointConfigName": "digits-new"}


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def _put(cloudwatch: Any, spec: Deployment, config: str = "digits-new") -> list[str]:
    for alarm in spec.own_alarms("digits", "AllTraffic", config):
        cloudwatch.put_metric_alarm(**alarm)
    return spec.alarm_names(config)


def _roll(
    cloudwatch: Any, spec: Deployment, *outcomes: tuple[int, float | None]
) -> tuple[str | None, list[int]]:
    """Roll ``spec`` out over a new fleet that answered ``outcomes`` (status, latency): why it rolled back, the steps."""
    stats = FleetStats()
    for status, latency_us in outcomes:
        stats.count(status, latency_us)
    shifted: list[int] = []
    watch = AlarmWatch(cloudwatch, _put(cloudwatch, spec), FLEET)
    return roll_out(spec.to_request("digits-new"), shifted.append, watch, stats), shifted


def test_a_healthy_new_fleet_takes_every_step_and_no_alarm_trips(cloudwatch: Any) -> None:
    spec = Deployment("linear", 50, wait_seconds=0, max_errors=0, max_latency_ms=1000)

    outcome, shifted = _roll(cloudwatch, spec, (200, 5_000.0))

    assert outcome is None and shifted == [50, 100]
    states = cloudwatch.describe_alarms(AlarmNames=spec.alarm_names("digits-new"))["MetricAlarms"]
    assert len(states) == 2 and "ALARM" not in {a["StateValue"] for a in states}


def test_an_error_on_the_new_fleet_trips_its_alarm_and_rolls_back_at_the_first_step(cloudwatch: Any) -> None:
    spec = Deployment("canary", 10, wait_seconds=0, max_errors=0)

    outcome, shifted = _roll(cloudwatch, spec, (200, 1_000.0), (500, None))

    assert shifted == [10], "the rest of the traffic never moved"
    assert outcome is not None and "digits-new-Invocation5XXErrors" in outcome
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["digits-new-Invocation5XXErrors"])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"


def test_an_alarm_on_another_config_is_not_this_fleets(cloudwatch: Any) -> None:
    old = Deployment(max_errors=0)
    names = _put(cloudwatch, old, config="digits-old")
    stats = FleetStats()
    stats.count(500, None)

    assert AlarmWatch(cloudwatch, names, FLEET).tripped(stats) is None


def test_a_slow_new_fleet_trips_the_latency_alarm(cloudwatch: Any) -> None:
    spec = Deployment(max_errors=None, max_latency_ms=100)
    stats = FleetStats()
    for latency_us in (50_000.0, 400_000.0):
        stats.count(200, latency_us)

    reason = AlarmWatch(cloudwatch, _put(cloudwatch, spec), FLEET).tripped(stats)

    assert reason is not None and "ModelLatency Average 225000" in reason


def test_an_update_records_its_rollout_and_retain_reuses_the_last() -> None:
    last = Deployment("canary", 20).to_request("digits-old")
    record = {"EndpointStatus": "InService", "LastDeploymentConfig": last}

    retained = update_fields(
        {"EndpointConfigName": "digits-new", "RetainDeploymentConfig": True}, record, "t"
    )
    plain = update_fields({"EndpointConfigName": "digits-new"}, record, "t")

    assert retained["LastDeploymentConfig"] == last and plain["LastDeploymentConfig"] is None
    assert retained["EndpointStatus"] == "Updating"
    assert retained["PendingDeploymentSummary"] == {"EndpointConfigName": "digits-new", "StartTime": "t"}
