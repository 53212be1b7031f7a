"""The job kinds the local backend runs: one worker module per kind.

A worker module defines ``ARN_NOUN`` (``training-job``), ``initial_state(request, name)`` (the members
Describe must carry from the first call, per the service model) and ``run(job, services)`` (the work,
in the detached runner process), and optionally ``STATUS_NAMES`` (the service's spelling of the
common status words, for kinds whose API spells them otherwise). Adding a kind here gives the local client its create, describe,
stop and list calls; a kind not listed is refused by the client rather than faked.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

LOCAL_WORKERS: dict[str, str] = {
    "training": "airflow_dl_provider.backends.local.training",
    "labeling": "airflow_dl_provider.backends.local.labeling",
    "tuning": "airflow_dl_provider.backends.local.tuning",
    "compilation": "airflow_dl_provider.backends.local.compilation",
    "transform": "airflow_dl_provider.backends.local.transform",
}


def worker(key: str) -> ModuleType:
    """The worker module of job kind ``key``."""
    return importlib.import_module(LOCAL_WORKERS[key])


def public_status(key: str, status: str) -> str:
    """The service's spelling of a job status: a worker keeps ``Completed``, Describe may say ``COMPLETED``."""
    names = getattr(worker(key), "STATUS_NAMES", None) or {}
    return str(names.get(status, status))
