"""What a local job's worker gets and raises: its services, the job's origin, log streams, the failure type.

The bottom of the worker layer: imports point one way, runner -> workers registry -> worker modules
-> this module, so nothing here imports a worker, the client or the runner. Kept apart from the
runner module, which runs as ``__main__``: a class defined there would not be the class the workers
import.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_dl_provider.backends.local.resources import ResourceStore
    from airflow_dl_provider.backends.local.state import JobStore


class JobFailure(Exception):
    """The job's own error: becomes ``FailureReason`` (SageMaker caps it at 1024 characters)."""


# The state members that say where a job was created; ``_s3_generation`` is also read by Describe.
_ORIGIN_FIELDS = {
    "home": "_home",
    "endpoint_url": "_endpoint_url",
    "region": "_region",
    "generation": "_s3_generation",
}


@dataclass(frozen=True)
class JobOrigin:
    """Where a job was created: the local home, the embedded server (URL and generation), the region.

    The client that creates a job writes it into the job's state (:meth:`state`); the runner builds
    the job's :class:`Services` from it alone (:meth:`of`), so no worker reads an environment
    variable or works out a path from its own directory.
    """

    home: Path
    endpoint_url: str
    region: str
    generation: str | None

    def state(self) -> dict[str, Any]:
        """The members to merge into a new job's state."""
        return {
            _ORIGIN_FIELDS["home"]: str(self.home),
            _ORIGIN_FIELDS["endpoint_url"]: self.endpoint_url,
            _ORIGIN_FIELDS["region"]: self.region,
            _ORIGIN_FIELDS["generation"]: self.generation,
        }

    @classmethod
    def of(cls, state: Mapping[str, Any]) -> JobOrigin:
        """Read the origin back from a job's state.

        :raises JobFailure: the state lacks a member (a job created by a client that did not record it).
        """
        # The generation may be None (no server record: a server the tests start), never missing.
        missing = [
            key
            for member, key in _ORIGIN_FIELDS.items()
            if key not in state or (member != "generation" and not state[key])
        ]
        if missing:
            raise JobFailure(
                f"InternalServerError: the local job's state lacks {', '.join(missing)}; it was created by "
                "a client that did not record where it runs: create the job again"
            )
        generation = state[_ORIGIN_FIELDS["generation"]]
        return cls(
            home=Path(state[_ORIGIN_FIELDS["home"]]),
            endpoint_url=str(state[_ORIGIN_FIELDS["endpoint_url"]]),
            region=str(state[_ORIGIN_FIELDS["region"]]),
            generation=None if generation is None else str(generation),
        )


class TrainingJobs(Protocol):
    """The calls a worker makes to run sub-jobs (tuning trials), as boto3's SageMaker client names them."""

    def create_training_job(self, **request: Any) -> dict[str, Any]: ...

    def describe_training_job(self, **params: Any) -> dict[str, Any]: ...

    def stop_training_job(self, **params: Any) -> dict[str, Any]: ...


@dataclass
class Services:
    """What a worker gets, built once by the runner from the job's :class:`JobOrigin`.

    :param origin: where the job was created (home, embedded server, region).
    :param store: the local jobs of the job's home (read a sub-job's or a warm-start parent's record).
    :param resources: the models, endpoints and packages of the job's home.
    :param client: a local SageMaker client on the same home and server, to start sub-jobs.
    :param s3: boto3 S3 client on the embedded server.
    :param logs: boto3 CloudWatch Logs client on the embedded server.
    :param stop: set once Stop has been accepted (or the runner is asked to terminate).
    """

    origin: JobOrigin
    store: JobStore
    resources: ResourceStore
    client: TrainingJobs
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
