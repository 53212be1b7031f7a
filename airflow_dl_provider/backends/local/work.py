"""What a local job's worker gets and raises: clients, the stop flag, log streams, the failure type.

Kept apart from the runner module, which runs as ``__main__``: a class defined there would not be
the class the workers import.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any


class JobFailure(Exception):
    """The job's own error: becomes ``FailureReason`` (SageMaker caps it at 1024 characters)."""


@dataclass
class Services:
    """What a worker gets: S3 and CloudWatch Logs clients on the embedded server, and the stop flag."""

    s3: Any
    logs: Any
    stop: threading.Event = field(default_factory=threading.Event)


class CloudWatchStream:
    """Append lines to one CloudWatch Logs stream, as the SageMaker agent does for a host."""

    def __init__(self, logs: Any, group: str, stream: str) -> None:
        self.logs, self.group, self.stream = logs, group, stream
        for call, kwargs in (
            (logs.create_log_group, {"logGroupName": group}),
            (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                call(**kwargs)

    def put(self, lines: list[tuple[int, str]]) -> None:
        if lines:
            events = [{"timestamp": ts, "message": msg} for ts, msg in lines]
            self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events)
