"""The exception types this provider raises.

Every error a user can fix is one line that names the field and the fix, raised before any job is
created, so a bad DAG fails at import or at the start of the task, never after money is spent.
"""

from __future__ import annotations


class DLProviderError(Exception):
    """Base class of every error this provider raises on purpose."""


class RequestValidationError(DLProviderError, ValueError):
    """A request does not match the SageMaker service model (type, required, enum, length, pattern)."""


class PreflightError(DLProviderError, ValueError):
    """A check that runs before a job is created failed: the request would fail or cost too much."""


class PipelineConfigError(DLProviderError, ValueError):
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


class DriftInputError(DLProviderError, ValueError):
    """A drift baseline, data set or threshold cannot be used; the message names it and the fix."""


class DataValidationError(DLProviderError, ValueError):
    """Data failed its expectations, or a suite or data set cannot be used.

    ``summary`` is the validation summary (JSON-safe, as pushed to XCom) when the data was
    validated and failed; it is ``None`` when the inputs could not be used (a malformed suite, an
    unreadable file), which the message names with the fix.
    """

    def __init__(self, message: str, *, summary: dict | None = None) -> None:
        super().__init__(message)
        self.summary = summary
