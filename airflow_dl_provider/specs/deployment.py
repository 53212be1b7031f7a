"""How an endpoint update rolls out: SageMaker's blue/green traffic shift, rolled back by CloudWatch alarms.

:class:`Deployment` becomes UpdateEndpoint's ``DeploymentConfig``: a ``BlueGreenUpdatePolicy`` (all at
once, a canary then the rest, or linear steps, each followed by a baking period) and an
``AutoRollbackConfiguration`` naming the alarms that, in ALARM during a baking period, make SageMaker
route all traffic back to the old fleet. Besides alarms it is given, it defines the new fleet's own
(``Invocation5XXErrors``, ``ModelLatency``), scoped to the new config by the ``EndpointConfigName``
dimension as AWS's guardrail examples do, for the operator to create with PutMetricAlarm.
The service's ranges are in :data:`airflow_dl_provider.service_behaviour.BLUE_GREEN`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_dl_provider.service_behaviour import BLUE_GREEN

if TYPE_CHECKING:
    from collections.abc import Mapping

TRAFFIC_SHIFTS = ("ALL_AT_ONCE", "CANARY", "LINEAR")
NAMESPACE = "AWS/SageMaker"
# The alarms this spec defines watch one minute of the new fleet's metrics, starting at the first datum.
ALARM_PERIOD_SECONDS = 60


def traffic_steps(routing: Mapping[str, Any]) -> list[int]:
    """The new fleet's share of traffic after each step of a ``TrafficRoutingConfiguration``, in percent."""
    kind = routing.get("Type", "ALL_AT_ONCE")
    size = (routing.get("CanarySize") or routing.get("LinearStepSize") or {}).get("Value", 100)
    if kind == "CANARY":
        return [int(size), 100]
    if kind == "LINEAR":
        return [min(100, int(size) * n) for n in range(1, math.ceil(100 / int(size)) + 1)]
    return [100]


def _within(where: str, value: Any, low: int | float, high: int | float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{where} must be a number from {low} to {high}, got {value!r}")


@dataclass
class Deployment:
    """The rollout of an endpoint update: traffic shifting, baking periods and the alarms that roll it back.

    :param traffic_shift: ``ALL_AT_ONCE`` (one step), ``CANARY`` (``traffic_percent`` of the new fleet
        first, then the rest) or ``LINEAR`` (steps of ``traffic_percent``); any case.
    :param traffic_percent: the canary's, or each linear step's, share of the variant's capacity:
        at most 50 for a canary, 10-50 for a linear step; unused for ``ALL_AT_ONCE``.
    :param wait_seconds: the baking period after each step (``WaitIntervalInSeconds``, 0-3600), while
        the alarms are watched; the last step's is the final baking period.
    :param termination_wait_seconds: how long the old fleet is kept once the new one takes all
        traffic (``TerminationWaitInSeconds``, 0-3600).
    :param max_execution_seconds: the whole rollout's limit (``MaximumExecutionTimeoutInSeconds``,
        600-14400); None: the service's default.
    :param alarms: names of existing CloudWatch alarms that roll the update back.
    :param max_errors: the new fleet's ``Invocation5XXErrors`` per minute above this trips the alarm
        the operator creates; None creates no such alarm.
    :param max_latency_ms: the new fleet's average ``ModelLatency`` above this (milliseconds) trips
        the alarm the operator creates; None creates no such alarm.
    """

    traffic_shift: str = "ALL_AT_ONCE"
    traffic_percent: int | None = None
    wait_seconds: int = 0
    termination_wait_seconds: int = 0
    max_execution_seconds: int | None = None
    alarms: list[str] = field(default_factory=list)
    max_errors: int | None = 0
    max_latency_ms: float | None = None

    template_fields: ClassVar[tuple[str, ...]] = ("alarms",)

    def __post_init__(self) -> None:
        self.traffic_shift = str(self.traffic_shift).upper()
        self.alarms = list(self.alarms or [])
        if self.traffic_shift not in TRAFFIC_SHIFTS:
            raise ValueError(
                f"deployment.traffic_shift: {self.traffic_shift!r} is not one of {', '.join(TRAFFIC_SHIFTS)}"
            )
        step = BLUE_GREEN.step_percent.get(self.traffic_shift)
        if step is not None:
            _within(f"deployment.traffic_percent ({self.traffic_shift})", self.traffic_percent, *step)
        _within("deployment.wait_seconds", self.wait_seconds, *BLUE_GREEN.wait_seconds)
        _within(
            "deployment.termination_wait_seconds", self.termination_wait_seconds, *BLUE_GREEN.wait_seconds
        )
        if self.max_execution_seconds is not None:
            _within(
                "deployment.max_execution_seconds", self.max_execution_seconds, *BLUE_GREEN.execution_seconds
            )
            baking = self.wait_seconds * len(
                traffic_steps(self.to_request("-")["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"])
            )
            if self.max_execution_seconds <= baking + self.termination_wait_seconds:
                raise ValueError(
                    f"deployment.max_execution_seconds: {self.max_execution_seconds} must exceed the baking "
                    f"periods ({baking} s) and termination_wait_seconds ({self.termination_wait_seconds} s) together"
                )
        if self.max_errors is not None:
            _within("deployment.max_errors", self.max_errors, 0, 10**9)
        if self.max_latency_ms is not None:
            _within("deployment.max_latency_ms", self.max_latency_ms, 0, 10**9)
        if len(self.alarm_names("-")) > BLUE_GREEN.max_alarms:
            raise ValueError(
                f"deployment.alarms: at most {BLUE_GREEN.max_alarms} alarms roll an update back, "
                f"counting the {len(self.alarm_names('-')) - len(self.alarms)} this spec creates"
            )

    def _watched(self) -> list[tuple[str, str, float]]:
        """(metric, statistic, threshold in the metric's unit) of each alarm this spec creates."""
        rows = (
            ("Invocation5XXErrors", "Sum", self.max_errors, 1),
            # ModelLatency is reported in microseconds.
            ("ModelLatency", "Average", self.max_latency_ms, 1000),
        )
        return [
            (metric, statistic, float(v) * scale) for metric, statistic, v, scale in rows if v is not None
        ]

    def own_alarms(self, endpoint: str, variant: str, config_name: str) -> list[dict[str, Any]]:
        """PutMetricAlarm requests for the new fleet's alarms (errors, latency), named after its config."""
        dimensions = [
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": variant},
            {"Name": "EndpointConfigName", "Value": config_name},
        ]
        return [
            {
                "AlarmName": f"{config_name}-{metric}",
                "AlarmDescription": f"Rolls back the blue/green update of {endpoint} to {config_name}",
                "Namespace": NAMESPACE,
                "MetricName": metric,
                "Dimensions": dimensions,
                "Statistic": statistic,
                "Period": ALARM_PERIOD_SECONDS,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": threshold,
                "ComparisonOperator": "GreaterThanThreshold",
                # No requests in a minute is no evidence against the new fleet.
                "TreatMissingData": "notBreaching",
            }
            for metric, statistic, threshold in self._watched()
        ]

    def alarm_names(self, config_name: str) -> list[str]:
        """The alarms that roll the update to ``config_name`` back: the given ones, then this spec's own."""
        return [*self.alarms, *(f"{config_name}-{metric}" for metric, _, _ in self._watched())]

    def to_request(self, config_name: str) -> dict[str, Any]:
        """UpdateEndpoint's ``DeploymentConfig`` for an update to ``config_name``."""
        routing: dict[str, Any] = {
            "Type": self.traffic_shift,
            "WaitIntervalInSeconds": int(self.wait_seconds),
        }
        size = {"Type": "CAPACITY_PERCENT", "Value": int(self.traffic_percent or 0)}
        if self.traffic_shift == "CANARY":
            routing["CanarySize"] = size
        elif self.traffic_shift == "LINEAR":
            routing["LinearStepSize"] = size
        policy: dict[str, Any] = {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": int(self.termination_wait_seconds),
        }
        if self.max_execution_seconds is not None:
            policy["MaximumExecutionTimeoutInSeconds"] = int(self.max_execution_seconds)
        request: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        names = self.alarm_names(config_name)
        if names:
            request["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in names]}
        return request
