"""A local endpoint's blue/green update: traffic moves to the new fleet in the policy's steps, baked, watched by alarms.

What UpdateEndpoint does on SageMaker (``service_behaviour.BLUE_GREEN``), played by the new fleet's
server process: the old fleet keeps serving while the new one starts; the endpoint record then names
both and the share of requests the new one takes (``_green_port``, ``_green_weight``), which the
runtime client reads on every request; after each step the server bakes for ``WaitIntervalInSeconds``
while it evaluates the ``AutoRollbackConfiguration`` alarms. An alarm that trips is set to ALARM in
CloudWatch (the embedded server's) and all traffic goes back to the old fleet: the endpoint is
``InService`` on its old config, with a ``FailureReason``.

Simulated: an alarm is evaluated on this fleet's own numbers since the update began (``Sum``,
``Average``, ``Maximum``, ``Minimum``, ``SampleCount`` of ``Invocations``, ``Invocation4XXErrors``,
``Invocation5XXErrors``, ``ModelLatency``), not per ``Period``; an alarm scoped by
``EndpointConfigName`` to another config (the old fleet) is not evaluated, and one on other metrics
or namespaces never trips here. A step is a share of requests, not of instances.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.specs.deployment import NAMESPACE, traffic_steps

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger("airflow_dl_provider.local.endpoint")
# How often a baking period looks at the alarms.
ALARM_CHECK_SECONDS = 0.1
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda value, limit: value > limit,
    "GreaterThanOrEqualToThreshold": lambda value, limit: value >= limit,
    "LessThanThreshold": lambda value, limit: value < limit,
    "LessThanOrEqualToThreshold": lambda value, limit: value <= limit,
}


def update_fields(request: Mapping[str, Any], record: Mapping[str, Any], started: str) -> dict[str, Any]:
    """What UpdateEndpoint records: Updating, the rollout it follows, the pending config.

    ``RetainDeploymentConfig`` reuses the endpoint's ``LastDeploymentConfig``; otherwise the request's
    own, or none (all at once, no alarms), as the service does.
    """
    deployment = request.get("DeploymentConfig")
    if deployment is None and request.get("RetainDeploymentConfig"):
        deployment = record.get("LastDeploymentConfig")
    return {
        "EndpointStatus": "Updating",
        "FailureReason": None,
        "LastDeploymentConfig": deployment,
        "PendingDeploymentSummary": {
            "EndpointConfigName": request["EndpointConfigName"],
            "StartTime": started,
        },
    }


@dataclass
class FleetStats:
    """This fleet's invocations since it started: counts by outcome and model latencies (microseconds)."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int, latency_us: float | None) -> None:
        with self.lock:
            self.invocations += 1
            self.errors_4xx += int(400 <= status < 500)
            self.errors_5xx += int(status >= 500)
            if latency_us is not None:
                self.latencies.append(latency_us)

    def datapoints(self, metric: str) -> list[float]:
        """One datum per invocation: 0/1 for the counts, the latency for ModelLatency."""
        with self.lock:
            if metric == "ModelLatency":
                return list(self.latencies)
            if metric == "Invocations":
                return [1.0] * self.invocations
            errors = {"Invocation4XXErrors": self.errors_4xx, "Invocation5XXErrors": self.errors_5xx}.get(
                metric
            )
            if errors is None:
                return []
            return [1.0] * errors + [0.0] * (self.invocations - errors)


def _statistic(name: str, values: list[float]) -> float | None:
    if not values:
        return None
    return {
        "Sum": sum(values),
        "Average": sum(values) / len(values),
        "Maximum": max(values),
        "Minimum": min(values),
        "SampleCount": float(len(values)),
    }.get(name)


class AlarmWatch:
    """The update's rollback alarms, as CloudWatch defines them, evaluated on the new fleet's numbers.

    :param cloudwatch: a CloudWatch client (the embedded server's).
    :param names: ``AutoRollbackConfiguration.Alarms`` names.
    :param fleet: the endpoint, variant and new config, ``{"EndpointName", "VariantName", "EndpointConfigName"}``.
    """

    def __init__(self, cloudwatch: Any, names: list[str], fleet: Mapping[str, str]) -> None:
        self.cloudwatch = cloudwatch
        self.alarms: list[dict[str, Any]] = []
        if names:
            found = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
            self.alarms = [a for a in found if self._watches(a, fleet)]
            missing = sorted(set(names) - {a["AlarmName"] for a in found})
            if missing:
                log.warning("rollback alarms %s do not exist: they never trip", ", ".join(missing))

    @staticmethod
    def _watches(alarm: Mapping[str, Any], fleet: Mapping[str, str]) -> bool:
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []}
        return alarm.get("Namespace") == NAMESPACE and all(
            dimensions.get(key, value) == value for key, value in fleet.items()
        )

    def tripped(self, stats: FleetStats) -> str | None:
        """The first alarm over its threshold, set to ALARM in CloudWatch with why; None while all are fine."""
        for alarm in self.alarms:
            value = _statistic(alarm.get("Statistic", ""), stats.datapoints(alarm.get("MetricName", "")))
            compare = _COMPARE.get(alarm.get("ComparisonOperator", ""))
            if value is None or compare is None or not compare(value, float(alarm["Threshold"])):
                continue
            reason = (
                f"{alarm['MetricName']} {alarm['Statistic']} {value:g} on the new fleet crossed "
                f"{alarm['ComparisonOperator']} {alarm['Threshold']:g}"
            )
            self.cloudwatch.set_alarm_state(
                AlarmName=alarm["AlarmName"], StateValue="ALARM", StateReason=reason[:1023]
            )
            return f"alarm {alarm['AlarmName']} went into ALARM ({reason})"
        return None


def roll_out(
    deployment: Mapping[str, Any] | None,
    shift: Callable[[int], object],
    watch: AlarmWatch,
    stats: FleetStats,
) -> str | None:
    """Move traffic to the new fleet step by step (``shift(percent)``), baking after each; None when done.

    :return: why the update rolls back: an alarm that tripped, or the rollout's time limit.
    """
    policy = (deployment or {}).get("BlueGreenUpdatePolicy") or {}
    routing = policy.get("TrafficRoutingConfiguration") or {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    limit = policy.get("MaximumExecutionTimeoutInSeconds")
    started = time.monotonic()
    for percent in traffic_steps(routing):
        shift(percent)
        log.info(
            "new fleet takes %d%% of the traffic; baking %ss",
            percent,
            routing.get("WaitIntervalInSeconds", 0),
        )
        bake_until = time.monotonic() + float(routing.get("WaitIntervalInSeconds", 0))
        while True:
            reason = watch.tripped(stats)
            if reason:
                return f"Deployment was rolled back: {reason}."
            if limit is not None and time.monotonic() - started > float(limit):
                return (
                    f"Deployment was rolled back: it ran over MaximumExecutionTimeoutInSeconds ({limit} s)."
                )
            if time.monotonic() >= bake_until:
                break
            time.sleep(ALARM_CHECK_SECONDS)
    return None
