"""The job kinds the local backend runs: one worker module per kind, each a :class:`LocalWorker`.

Adding a kind here gives the local client its create, describe, stop and list calls; a kind not
listed is refused by the client rather than faked. The registry imports the worker modules, and they
import only :mod:`.work` (their services' types): no worker imports the client or the runner, so
there is no cycle to hide behind a lazy import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from airflow_dl_provider.backends.local import compilation, labeling, processing, training, transform, tuning

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_dl_provider.backends.local.state import LocalJob
    from airflow_dl_provider.backends.local.work import Services


@runtime_checkable
class LocalWorker(Protocol):
    """One job kind's work on this machine: what the client and the runner ask of it.

    Members are read-only properties so that a module's upper-case constants implement them (the
    worker modules are the implementations: mypy checks each against this protocol in
    :data:`LOCAL_WORKERS`).
    """

    @property
    def ARN_NOUN(self) -> str:
        """The resource type in the job's ARN: ``training-job``."""
        ...

    @property
    def STATUS_NAMES(self) -> Mapping[str, str]:
        """The service's spelling of the common status words, for APIs that spell them otherwise
        (``Completed`` -> ``COMPLETED``); empty where the API uses the common words."""
        ...

    def initial_state(self, request: dict[str, Any], name: str) -> dict[str, Any]:
        """The members Describe must carry from the first call on (the service model requires them)."""
        ...

    def run(self, job: LocalJob, services: Services) -> None:
        """Do the job, in its detached runner; record its end or raise :class:`~.work.JobFailure`."""
        ...


LOCAL_WORKERS: dict[str, LocalWorker] = {
    "training": training,
    "labeling": labeling,
    "tuning": tuning,
    "compilation": compilation,
    "transform": transform,
    "processing": processing,
}


def worker(key: str) -> LocalWorker:
    """The worker of job kind ``key``."""
    return LOCAL_WORKERS[key]


def public_status(key: str, status: str) -> str:
    """The service's spelling of a job status: a worker keeps ``Completed``, Describe may say ``COMPLETED``."""
    return LOCAL_WORKERS[key].STATUS_NAMES.get(status, status)
