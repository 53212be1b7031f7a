"""Faults injected on the wire: throttling and 5xx answers on every AWS API the code under test calls.

:class:`Faults` gates the services' botocore ``before-send`` handlers: the contract suite's SageMaker
(``tests/contract/fake_service.py``) and moto's S3 and CloudWatch Logs. botocore calls every
``before-send`` handler and takes the first answer, so a fault must keep the service from acting, not
merely answer first. For each request the gate decides, from a seeded random generator, to let the
service act and answer, or to answer itself with what the real service sends when it is overloaded
or failing:

- ``throttle``: the service's throttling error (``service_behaviour.THROTTLING``);
- ``5xx``: ``InternalFailure`` (500) or ``ServiceUnavailable`` (503); S3's ``InternalError`` and
  ``ServiceUnavailable``.

Both come before the service acts. The first call of every API is always faulted, so every API the
operators, the engine, the trigger and the log copier call meets at least one fault; later calls are
faulted at ``rate``. botocore then retries, backs off (recorded, not slept:
:func:`~tests.contract.fake_service.serving`) and raises exactly as it does for AWS.

:meth:`Faults.lose` plays the other 5xx: a SageMaker call that the service carried out and whose
answer was lost (a 500 instead of it). botocore sends it again, and the service answers the retried
Create as it answers any Create of a taken name: the hazard that turns a retry into a second cluster.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse

from airflow_dl_provider import service_behaviour
from tests.contract.fake_service import _Body

if TYPE_CHECKING:
    from tests.contract.fake_service import SageMakerService

# The services' server errors, with their HTTP status.
SERVER_ERRORS: dict[str, tuple[tuple[str, str, int], ...]] = {
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html
    "sagemaker": (
        ("InternalFailure", "The request processing has failed because of an unknown error.", 500),
        ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.", 503),
    ),
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html
    "logs": (
        ("InternalFailure", "The request processing has failed because of an unknown error.", 500),
        ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.", 503),
    ),
    # https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
    "s3": (
        ("InternalError", "We encountered an internal error. Please try again.", 500),
        ("ServiceUnavailable", "Please reduce your request rate.", 503),
    ),
}
# Throttling: SageMaker and CloudWatch Logs answer 400 ThrottlingException, S3 503 SlowDown (same pages).
THROTTLING_STATUS = {"sagemaker": 400, "logs": 400, "s3": 503}
# botocore's event names for the services (``before-send.<service id, hyphenized>.<operation>``).
EVENT_SERVICES = {"sagemaker": "sagemaker", "cloudwatch-logs": "logs", "s3": "s3"}
FAULT_KINDS = ("throttle", "5xx", "lost")


@dataclass
class Faults:
    """Seeded faults on every call; what was injected is counted per kind and per API.

    :param sagemaker: the contract service, which a lost answer lets act first.
    :param rate: the share of calls after each API's first that are faulted; 0 (with
        ``first_calls=False``): only the answers :meth:`lose` names are touched.
    """

    sagemaker: SageMakerService
    seed: int = 11
    rate: float = 0.05
    first_calls: bool = True
    rng: random.Random = field(init=False)
    #: SageMaker operations whose next answers are lost, and how many.
    losing: Counter[str] = field(default_factory=Counter)
    #: ``service:Operation`` -> [calls left, fault kind, ``(code, message, status)``] (:meth:`burst`).
    bursts: dict[str, list[Any]] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)
    #: Calls seen and faults injected, per ``service:Operation``.
    calls: Counter[str] = field(default_factory=Counter)
    faulted: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def gated(self, handlers: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """``botocore.handlers.BUILTIN_HANDLERS`` with the services' ``before-send`` handlers gated.

        The fake SageMaker's handler is the service's own ``handle``; moto's (blind to SageMaker) is the
        one registered for every ``before-send``.
        """
        specs = []
        for spec in handlers:
            if spec[1] == self.sagemaker.handle:
                spec = (spec[0], self._gate(spec[1], {"sagemaker"}), *spec[2:])
            elif spec[0] == "before-send":
                spec = (spec[0], self._gate(spec[1], {"s3", "logs"}), *spec[2:])
            specs.append(spec)
        return specs

    def _gate(self, answer: Any, services: set[str]) -> Any:
        def gate(**kwargs: Any) -> Any:
            _, event_service, operation = kwargs["event_name"].split(".", 2)
            service = EVENT_SERVICES.get(event_service)
            if service not in services:
                return answer(**kwargs)
            return self.handle(kwargs["request"], service, operation, lambda: answer(**kwargs))

        return gate

    def lose(self, operation: str, times: int = 1) -> None:
        """Let the service carry out the next ``times`` ``operation`` calls, and lose their answers."""
        self.losing[operation] += times

    def burst(self, api: str, times: int, *, throttle: bool = True) -> None:
        """Answer the next ``times`` calls of ``api`` (``s3:ListObjectsV2``) with throttling, else a 500."""
        service = api.partition(":")[0]
        if throttle:
            error = service_behaviour.THROTTLING[service]
            self.bursts[api] = [
                times,
                "throttle",
                (error["Code"], error["Message"], THROTTLING_STATUS[service]),
            ]
        else:
            self.bursts[api] = [times, "5xx", SERVER_ERRORS[service][0]]

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def handle(self, request: Any, service: str, operation: str, answer: Any) -> AWSResponse | None:
        """Fault this request, or let ``answer`` (the service) act and answer it."""
        api = f"{service}:{operation}"
        first = self.calls[api] == 0
        self.calls[api] += 1
        if service == "sagemaker" and self.losing[operation]:
            self.losing[operation] -= 1
            self._count("lost", api)
            answer()  # done; its answer never arrives
            code, message, status = SERVER_ERRORS["sagemaker"][0]
            return _error(request, service, code, message, status)
        burst = self.bursts.get(api)
        if burst and burst[0]:
            burst[0] -= 1
            self._count(burst[1], api)
            return _error(request, service, *burst[2])
        if not (first and self.first_calls) and self.rng.random() >= self.rate:
            return answer()
        if self.rng.random() < 0.5:
            self._count("throttle", api)
            error = service_behaviour.THROTTLING[service]
            return _error(request, service, error["Code"], error["Message"], THROTTLING_STATUS[service])
        self._count("5xx", api)
        code, message, status = self.rng.choice(SERVER_ERRORS[service])
        return _error(request, service, code, message, status)

    def _count(self, kind: str, api: str) -> None:
        self.injected[kind] += 1
        self.faulted[api] += 1

    def summary(self) -> str:
        kinds = ", ".join(f"{self.injected[k]} {k}" for k in FAULT_KINDS if self.injected[k])
        return f"{self.total} faults ({kinds}) on {len(self.faulted)} of {len(self.calls)} APIs"

    def unfaulted(self) -> list[str]:
        """APIs that were called and never faulted: none, by construction (each one's first call is)."""
        return sorted(api for api in self.calls if not self.faulted[api])


def _error(request: Any, service: str, code: str, message: str, status: int) -> AWSResponse:
    """The error answer as the service's protocol carries it: JSON for SageMaker and Logs, XML for S3."""
    headers = {"x-amzn-RequestId": "00000000-0000-0000-0000-00000000fa17"}
    if service == "s3":
        data = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>FA17FA17FA17FA17</RequestId></Error>"
        ).encode()
        headers["Content-Type"] = "application/xml"
        if request.method == "HEAD":  # a HEAD answer has no body: botocore reads the status alone
            data = b""
    else:
        data = json.dumps({"__type": code, "message": message}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.1"
    headers["Content-Length"] = str(len(data))
    return AWSResponse(request.url, status, headers, _Body(data))
