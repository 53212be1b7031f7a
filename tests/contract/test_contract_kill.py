"""A job task killed while deferred: the trigger stops the job its task started (on_kill does on a worker)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.triggers.job import SageMakerJobTrigger
from tests.contract.deferral import task_deferred
from tests.contract.job_cases import training

if TYPE_CHECKING:
    from pathlib import Path

    from tests.contract.conftest import Aws


def test_a_deferred_training_job_is_stopped_when_its_task_is_killed(
    aws: Aws, tmp_path: Path, task_context: Any
) -> None:
    aws.service.jobs.plan("TrainingJob", polls=None)
    with pytest.raises(task_deferred()) as caught:
        training(aws, tmp_path, deferrable=True).execute(task_context(task_id="train"))
    _, kwargs = caught.value.trigger.serialize()
    assert kwargs["undo"] == {"action": "stop"}

    asyncio.run(SageMakerJobTrigger(**kwargs).on_kill())

    assert aws.service.requests("StopTrainingJob") == [{"TrainingJobName": kwargs["job_name"]}]
    assert aws.service.count("CreateTrainingJob") == 1
