"""The exception types this provider raises.

Every error a user can fix is one line that names the field and the fix, raised before any job is
created, so a bad DAG fails at import or at the start of the task, never after money is spent.

Errors that no retry can fix (:class:`NotRetryable`: a request off the service model, a failed
pre-flight check, a bad config, unusable drift or validation input) fail an Airflow task at once
instead of burning its retries: raised where Airflow runs, each is also Airflow's
``AirflowFailException``. One raised while a transient error is being handled (throttling past
botocore's retries, a 5xx, a dropped connection: "cannot list s3://... (SlowDown)") stays
retryable, since the next try may well succeed.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any


class DLProviderError(Exception):
    """Base class of every error this provider raises on purpose."""


def is_transient(err: BaseException | None) -> bool:
    """Would the same call succeed if tried again later: throttling, a 5xx, a dropped connection?"""
    if err is None:
        return False
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    from airflow_dl_provider import service_behaviour

    if isinstance(err, ClientError):
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return service_behaviour.is_throttling(err) or status >= 500
    # botocore's EndpointConnectionError, ReadTimeoutError, ConnectionClosedError; a socket's own.
    return isinstance(err, (ConnectionError, HTTPClientError, builtins.ConnectionError, TimeoutError))


# One Airflow subclass per declared class, made on first use.
_FAILING: dict[type[NotRetryable], type[NotRetryable]] = {}


def _failing(cls: type[NotRetryable]) -> type[NotRetryable]:
    """``cls`` made also the ``AirflowFailException`` this Airflow's task runner catches."""
    if cls in _FAILING:
        return _FAILING[cls]
    try:
        from airflow.sdk.exceptions import AirflowFailException  # Airflow >= 3.1
    except ImportError:  # Airflow 2.x and 3.0: core's, the one their task runners catch
        from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]
    namespace = {"__module__": cls.__module__, "__doc__": cls.__doc__, "_declared": cls}
    return _FAILING.setdefault(cls, type(cls.__name__, (cls, AirflowFailException), namespace))


class NotRetryable(DLProviderError):
    """An error the same task would meet again on its retry: in an Airflow task it fails at once.

    Where Airflow is loaded (every task process and DAG processor; the local backend's job processes
    and the CLI do not load it, and stay light), an instance is of a subclass that also derives from
    ``AirflowFailException``, so the task runner ends the task without its retries, while
    ``except PreflightError`` and ``isinstance`` work as before. One created while a transient error
    is being handled (:func:`is_transient`) is a plain, retryable error.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> NotRetryable:
        target = cls
        if "airflow" in sys.modules and not is_transient(sys.exc_info()[1]):
            target = _failing(cls)
        return super().__new__(target, *args, **kwargs)

    def __reduce__(self) -> Any:
        # Pickled as the declared class (the Airflow subclass is made at run time, pickle cannot
        # find it by name); its __new__ makes it again where Airflow is loaded.
        declared = type(self).__dict__.get("_declared", type(self))
        return (declared, self.args, self.__dict__ or None)


class RequestValidationError(NotRetryable, ValueError):
    """A request does not match the SageMaker service model (type, required, enum, length, pattern)."""


class PreflightError(NotRetryable, ValueError):
    """A check that runs before a job is created failed: the request would fail or cost too much."""


class PipelineConfigError(NotRetryable, ValueError):
    """A pipeline YAML config is invalid; the message names the file, the field and the fix."""


class SageMakerJobError(DLProviderError):
    """A SageMaker job failed, was stopped, or did not finish in time.

    One exception type for every job kind; ``failure_reason`` is the job's own ``FailureReason``.
    """

    def __init__(
        self, message: str, *, job_name: str = "", status: str = "", failure_reason: str = ""
    ) -> None:
        super().__init__(message)
        self.job_name = job_name
        self.status = status
        self.failure_reason = failure_reason


class DriftInputError(NotRetryable, ValueError):
    """A drift baseline, data set or threshold cannot be used; the message names it and the fix."""


class DataValidationError(NotRetryable, ValueError):
    """Data failed its expectations, or a suite or data set cannot be used.

    ``summary`` is the validation summary (JSON-safe, as pushed to XCom) when the data was
    validated and failed; it is ``None`` when the inputs could not be used (a malformed suite, an
    unreadable file), which the message names with the fix.
    """

    def __init__(self, message: str, *, summary: dict | None = None) -> None:
        super().__init__(message)
        self.summary = summary
