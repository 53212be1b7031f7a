"""The one job engine: every SageMaker job kind is a row in :mod:`.kinds`, run by :mod:`.engine`."""

from __future__ import annotations

from airflow_dl_provider.jobs.engine import JobEngine, JobHandle
from airflow_dl_provider.jobs.kinds import JOB_KINDS, JobKind, job_kind
from airflow_dl_provider.jobs.naming import deterministic_job_name

__all__ = ["JOB_KINDS", "JobEngine", "JobHandle", "JobKind", "deterministic_job_name", "job_kind"]
