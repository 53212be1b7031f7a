"""Deterministic job names: the same task instance always asks for the same job.

SageMaker job names are unique per account and region and cannot be reused. A name derived from
(dag_id, task_id, run_id, map_index) lets a retried or cleared task find the job its earlier try
started instead of launching a second cluster; ``attempt`` names the follow-up job after a failure.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterator

# What to do when the task instance's job name is taken: see JobEngine.ensure.
IfExists = Literal["reattach", "fail", "new"]
IF_EXISTS_CHOICES: tuple[IfExists, ...] = ("reattach", "fail", "new")

_HASH_LENGTH = 10
# Enough follow-up jobs for any sane retry policy; past this something is wrong, so say so.
MAX_ATTEMPTS = 50


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9]", "-", text)).strip("-")


def deterministic_job_name(
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int = -1,
    *,
    max_length: int = 63,
    prefix: str | None = None,
    attempt: int = 1,
) -> str:
    """Return a valid SageMaker job name that is stable for one task instance.

    The name is ``<slug>-<hash>[-r<attempt>]``: the slug is ``prefix`` (or dag and task ids) made
    safe and cut to fit, the hash covers all four identifiers so names of different runs never
    collide even when the slug is cut.

    :param max_length: the API's limit: 63 for most jobs, 32 for tuning jobs.
    :param attempt: 1 for the first job; 2, 3... for the jobs started after a failed one.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    digest = hashlib.sha256(f"{dag_id}\x1f{task_id}\x1f{run_id}\x1f{map_index}".encode()).hexdigest()
    suffix = f"-{digest[:_HASH_LENGTH]}" + (f"-r{attempt}" if attempt > 1 else "")
    room = max_length - len(suffix)
    slug = _slug(prefix if prefix else f"{dag_id}-{task_id}")[:room].rstrip("-")
    if not slug:
        return ("j" + suffix)[:max_length]
    return slug + suffix


@dataclass(frozen=True)
class JobNames:
    """The names one task instance's jobs take, in order: the first, then one per failed attempt.

    Computed once from the task instance's ids; the engine only walks them
    (:meth:`~airflow_dl_provider.jobs.engine.JobEngine.ensure`), so every caller asks for the same job.

    :param max_length: the job kind's limit on names (``JobKind.max_name_length``).
    :param prefix: ``job_name_prefix``; None: the dag and task ids.
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    max_length: int = 63
    prefix: str | None = None

    def attempt(self, attempt: int) -> str:
        """The name of the ``attempt``-th job (1: the first)."""
        return deterministic_job_name(
            self.dag_id,
            self.task_id,
            self.run_id,
            self.map_index,
            max_length=self.max_length,
            prefix=self.prefix,
            attempt=attempt,
        )

    @property
    def first(self) -> str:
        return self.attempt(1)

    def __iter__(self) -> Iterator[str]:
        """Attempt names 1 to :data:`MAX_ATTEMPTS`."""
        return (self.attempt(n) for n in range(1, MAX_ATTEMPTS + 1))
