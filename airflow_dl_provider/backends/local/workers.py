"""The job kinds the local backend runs: one worker module per kind.

A worker module defines ``ARN_NOUN`` (``training-job``), ``initial_state(request, name)`` (the members
Describe must carry from the first call, per the service model) and ``run(job, services)`` (the work,
in the detached runner process). Adding a kind here gives the local client its create, describe,
stop and list calls; a kind not listed is refused by the client rather than faked.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

LOCAL_WORKERS: dict[str, str] = {
    "training": "airflow_dl_provider.backends.local.training",
}


def worker(key: str) -> ModuleType:
    """The worker module of job kind ``key``."""
    return importlib.import_module(LOCAL_WORKERS[key])
