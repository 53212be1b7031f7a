"""What the real services do where a botocore Stubber cannot tell, recorded as data with its source.

A pure core: no Airflow, no backend. The engine, the sensor, the trigger and every resource helper ask
:func:`is_not_found` (the one not-found detector); the local backend answers with
:func:`not_found_error`, so a local run meets the same codes and messages as a run on AWS; the contract
suite (``tests/contract/``) plays the service from these rows.

Each row cites the AWS page its behaviour comes from. Where AWS documents only the error code (most
Describe calls list ``ResourceNotFound`` while the service answers ``ValidationException``), the row
records what the service answers and the detector accepts both, as the Amazon provider and the ACK
SageMaker controller do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VALIDATION = "ValidationException"
RESOURCE_NOT_FOUND = "ResourceNotFound"


@dataclass(frozen=True)
class NotFound:
    """How one Describe-style call says "no such resource".

    :param operation: the API operation, e.g. ``DescribeTrainingJob``.
    :param code: the error code the service answers with.
    :param message: the message it answers with; ``{name}`` is the resource name, ``{arn}`` its ARN.
    :param also: other codes that mean not found for this call (any message).
    :param match: lower-case fragments of which one must be in a ``code`` message for it to mean not
        found (``code`` is often ``ValidationException``, which also means a malformed request).
        Empty: any message with ``code`` means not found.
    :param source: the AWS documentation page.
    """

    operation: str
    code: str
    message: str
    also: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    source: str = ""

    def error(self, name: str, arn: str = "") -> dict[str, str]:
        return {"Code": self.code, "Message": self.message.format(name=name, arn=arn or name)}

    def matches(self, code: str, message: str) -> bool:
        if code in self.also:
            return True
        if code != self.code:
            return False
        lowered = message.lower()
        return not self.match or any(fragment in lowered for fragment in self.match)


_API = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_{}.html"

NOT_FOUND: dict[str, NotFound] = {
    row.operation: row
    for row in (
        NotFound(
            "DescribeTrainingJob",
            VALIDATION,
            "Requested resource not found.",
            also=(RESOURCE_NOT_FOUND,),
            match=("not found",),
            source=_API.format("DescribeTrainingJob"),
        ),
        NotFound(
            "DescribeTransformJob",
            VALIDATION,
            "Could not find requested job with name {name}",
            also=(RESOURCE_NOT_FOUND,),
            match=("could not find",),
            source=_API.format("DescribeTransformJob"),
        ),
        NotFound(
            "DescribeProcessingJob",
            VALIDATION,
            "Could not find requested job with name {name}",
            also=(RESOURCE_NOT_FOUND,),
            match=("could not find",),
            source=_API.format("DescribeProcessingJob"),
        ),
        NotFound(
            "DescribeHyperParameterTuningJob",
            RESOURCE_NOT_FOUND,
            "Amazon SageMaker can't find a tuning job with name {name}",
            source=_API.format("DescribeHyperParameterTuningJob"),
        ),
        # Labeling and compilation: any ValidationException or ResourceNotFound means not found.
        NotFound(
            "DescribeLabelingJob",
            RESOURCE_NOT_FOUND,
            "Could not find labeling job {name}",
            also=(VALIDATION,),
            source=_API.format("DescribeLabelingJob"),
        ),
        NotFound(
            "DescribeCompilationJob",
            RESOURCE_NOT_FOUND,
            "Could not find compilation job {name}",
            also=(VALIDATION,),
            source=_API.format("DescribeCompilationJob"),
        ),
    )
}


def not_found_rule(operation: str) -> NotFound:
    """The row for ``operation``; an operation without one is a bug in the table, said at once."""
    try:
        return NOT_FOUND[operation]
    except KeyError:
        raise KeyError(f"service_behaviour has no not-found row for {operation}") from None


def not_found_error(operation: str, name: str, arn: str = "") -> dict[str, str]:
    """The ``Error`` dict (``Code``, ``Message``) the real service answers for a missing ``name``."""
    return not_found_rule(operation).error(name, arn)


def is_not_found(operation: str, err: Any) -> bool:
    """The one detector: does the ``ClientError`` ``err`` from ``operation`` mean "no such resource"?"""
    error = getattr(err, "response", {}).get("Error", {})
    return not_found_rule(operation).matches(str(error.get("Code", "")), str(error.get("Message", "")))
