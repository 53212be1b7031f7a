"""An in-process SageMaker that answers real botocore clients the way the service does.

While :func:`serving` is active, every botocore client created (the operators' hooks, the trigger's,
the sensor's) sends its SageMaker requests to :class:`SageMakerService` instead of AWS: a
``before-send`` handler decodes the wire request, checks it with our validator, lets the resource
state machines (:mod:`.fake_jobs`, :mod:`.fake_hosting`) answer, checks the answer against the
service model and returns it as an HTTP response. botocore then parses it, retries it when it is
throttled and raises for errors exactly as it does for AWS, so the code under test cannot tell.
S3 and CloudWatch Logs are moto's (in process); moto's own SageMaker never sees a request.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import re
import threading
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.compat
import botocore.endpoint
import botocore.handlers
import botocore.hooks
import botocore.loaders
import botocore.session
from botocore.awsrequest import AWSResponse

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.validation.requests import request_errors, response_errors

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

REGION = "us-east-1"
ACCOUNT = "123456789012"


class ServiceError(Exception):
    """An error answer: the code and message the real service sends, with its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def not_found(operation: str, name: str, arn: str) -> ServiceError:
    """The real not-found answer of ``operation`` for ``name``, from the behaviour table."""
    error = service_behaviour.not_found_error(operation, name, arn)
    return ServiceError(error["Code"], error["Message"])


def arn(resource: str, name: str) -> str:
    # SageMaker lower-cases the name part of the ARNs it mints.
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}/{name.lower()}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class Call:
    """One request that reached the service: its operation, parameters and error code (if any)."""

    operation: str
    params: dict[str, Any]
    error: str | None = None


class _Body(io.BytesIO):
    """The raw HTTP body botocore reads (``stream()``), as urllib3's response offers it."""

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def _wire(value: Any) -> Any:
    # JSON protocol: timestamps travel as epoch seconds.
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(f"cannot send {type(value).__name__} on the wire")


@dataclass
class SageMakerService:
    """The service: a call log, throttling on demand, and the resource stores that answer.

    :param s3: a (moto) S3 client the service writes job outputs with.
    :param logs: a (moto) CloudWatch Logs client the jobs write their log lines with.
    """

    s3: Any
    logs: Any
    calls: list[Call] = field(default_factory=list)
    #: Requests the real service would refuse for their shape, operations nobody plays, bad answers.
    problems: list[str] = field(default_factory=list)
    _throttled: dict[str, list[int]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        from tests.contract.fake_hosting import Hosting, Registry
        from tests.contract.fake_jobs import Jobs

        self.jobs = Jobs(self)
        self.hosting = Hosting(self)
        self.registry = Registry(self)
        self._stores = (self.jobs, self.hosting, self.registry)

    # -- what tests ask ------------------------------------------------------------------------------

    def throttle(self, operation: str, times: int = 1, *, after: int = 0) -> None:
        """Answer ``times`` calls of ``operation`` with SageMaker's throttling error, once ``after``
        more of them have been answered normally."""
        self._throttled[operation] = [after, times]

    def count(self, operation: str, *, error: str | None = None) -> int:
        """How many ``operation`` requests reached the service (with ``error``: only those it refused so)."""
        return sum(1 for c in self.calls if c.operation == operation and (error is None or c.error == error))

    def requests(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every ``operation`` request the service accepted, in order."""
        return [c.params for c in self.calls if c.operation == operation and c.error is None]

    def operations(self) -> list[str]:
        return [c.operation for c in self.calls]

    # -- the wire ------------------------------------------------------------------------------------

    def handle(self, request: Any, **_kwargs: Any) -> AWSResponse:
        """botocore's ``before-send`` hook: answer one prepared SageMaker request."""
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        body = request.body or b"{}"
        params = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
        with self._lock:
            try:
                response = self._answer(operation, params)
            except ServiceError as err:
                self.calls.append(Call(operation, params, err.code))
                payload = {"__type": err.code, "Message": err.message}
                return self._response(request, err.status, payload)
            self.calls.append(Call(operation, params))
        return self._response(request, 200, response)

    def _answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        pending = self._throttled.get(operation)
        if pending and pending[0]:
            pending[0] -= 1
        elif pending and pending[1]:
            pending[1] -= 1
            error = service_behaviour.THROTTLING["sagemaker"]
            raise ServiceError(error["Code"], error["Message"])
        refused = request_errors(operation, params)
        if refused:
            self.problems.append(f"refused request: {refused[0]}")
            raise ServiceError("ValidationException", refused[0])
        for store in self._stores:
            method = getattr(store, snake(operation), None)
            if method is not None:
                break
        else:
            self.problems.append(f"not played: {operation}")
            raise ServiceError("InternalFailure", f"the contract service does not play {operation}", 500)
        response = dict(method(**params))
        wrong = response_errors(operation, response)
        if wrong:
            # The fake, not the code under test, is wrong: say so loudly.
            self.problems.append(f"bad answer to {operation}: {wrong[0]}")
            raise AssertionError(f"the contract service answered {operation} off the model: {wrong}")
        return response

    @staticmethod
    def _response(request: Any, status: int, payload: Mapping[str, Any]) -> AWSResponse:
        data = json.dumps(payload, default=_wire).encode()
        headers = {
            "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000",
            "Content-Type": "application/x-amz-json-1.1",
            "Content-Length": str(len(data)),
        }
        return AWSResponse(request.url, status, headers, _Body(data))


def _except_sagemaker(stubber: Any) -> Any:
    """moto's stubber, blind to SageMaker: moto's SageMaker is a placeholder, never the service."""

    def handler(event_name: str, **kwargs: Any) -> Any:
        if event_name.startswith("before-send.sagemaker."):
            return None
        return stubber(event_name=event_name, **kwargs)

    return handler


@contextmanager
def serving(service: SageMakerService, monkeypatch: Any) -> Iterator[list[float]]:
    """Route every botocore client created from here on to ``service``; yield botocore's retry pauses.

    botocore's retry backoff is recorded instead of slept, so throttling costs no wall time and a
    test can see that botocore, not our code, absorbed it.
    """
    from moto.core.models import botocore_stubber

    handlers = [
        (spec[0], _except_sagemaker(spec[1]), *spec[2:]) if spec[1] is botocore_stubber else spec
        for spec in botocore.handlers.BUILTIN_HANDLERS
    ]
    monkeypatch.setattr(
        botocore.handlers, "BUILTIN_HANDLERS", [("before-send.sagemaker", service.handle), *handlers]
    )
    pauses: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=pauses.append))
    monkeypatch.setattr(botocore.session, "create_loader", _shared_loader)
    monkeypatch.setattr(botocore.hooks, "accepts_kwargs", _accepts_kwargs)
    monkeypatch.setattr(botocore.hooks.EventAliaser, "__init__", _shared_aliases)
    # The Amazon hook names its caller in the User-Agent by walking inspect.stack(), which reads the
    # source of every frame: under pytest's deep stacks that is a third of the suite's time, for a
    # header nothing here reads.
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    monkeypatch.setattr(
        AwsGenericHook, "_get_caller", lambda self, target_function_name="execute": "Contract"
    )
    yield pauses


# Every hook builds a new botocore session, and each session re-derives what is the same for all of
# them: the service models from disk, whether each of its ~140 built-in handlers takes **kwargs
# (inspect.signature), the aliases of every event name. Derived once here, they cost the suite a
# fraction of its time; botocore does exactly what it did with them.
_ALIASES: dict[str, str] = {}
_ORIGINAL_ALIASER_INIT = botocore.hooks.EventAliaser.__init__


def _shared_aliases(self: Any, event_emitter: Any, event_aliases: Any = None) -> None:
    _ORIGINAL_ALIASER_INIT(self, event_emitter, event_aliases)
    if event_aliases is None:
        self._alias_name_cache = _ALIASES


@functools.cache
def _accepts_kwargs_of(func: Any) -> bool:
    return bool(botocore.compat.accepts_kwargs(func))


def _accepts_kwargs(func: Any) -> bool:
    target = getattr(func, "__func__", func)  # a bound method takes **kwargs if its function does
    try:
        return _accepts_kwargs_of(target)
    except TypeError:  # unhashable
        return bool(botocore.compat.accepts_kwargs(func))


class _SearchPaths(list):  # type: ignore[type-arg]
    """boto3 appends its data path to the loader of every session it makes: keep one copy."""

    def append(self, path: Any) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> Any:
    """One botocore data loader (and its cache of the read-only service models) for every session."""
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader.search_paths)
    return loader
