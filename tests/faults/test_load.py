"""Load: 50 jobs at once on the local backend, through the engine: 0 lost, 0 duplicated, each line once.

Fifty task instances (one task mapped 50 ways) each start their training job with
:meth:`JobEngine.ensure` and wait on it with :meth:`JobEngine.wait` at the same time, from 50 threads
sharing one job home and the embedded S3 and Logs server; while they run, every task is retried once
(a second ``ensure``), as a scheduler restart would retry them. The jobs are the cheapest the local
backend runs: a script that prints a few lines.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.engine import JobEngine
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.naming import JobNames
from airflow_dl_provider.operators.training import source_archive

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow  # 50 real runner processes

JOBS = 50
LINES = 5
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
SCRIPT = f"""\
import os, time
for line in range({LINES}):
    print(f"{{os.environ['TASK']}} line {{line}}", flush=True)
    time.sleep(0.1)
"""


class JobLog:
    """One task's log: the lines the engine writes for it (the task log of that task instance)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def _add(self, message: str, *args: Any) -> None:
        self.messages.append(message % args if args else message)

    info = warning = debug = error = _add


def _request(bucket: str, submit: str, task: int) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/load"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(submit),
        },
        "Environment": {"TASK": f"task-{task}"},
    }


def test_50_concurrent_jobs_0_lost_0_duplicated_every_line_copied_once(
    local_backend: Any, tmp_path: Path, counts: Any
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(SCRIPT))
    data, digest = source_archive(src)
    submit = local_backend.upload(f"code/{digest}/sourcedir.tar.gz", data)
    hook = SageMakerJobHook(aws_conn_id="aws_default")
    client, logs = hook.conn, hook.logs
    kind = JOB_KINDS["training"]
    task_logs = [JobLog() for _ in range(JOBS)]
    created: list[tuple[int, str, bool]] = []
    results: dict[int, dict[str, Any]] = {}
    errors: dict[int, BaseException] = {}
    started = threading.Barrier(JOBS)
    retried = threading.Barrier(JOBS)

    def task(index: int) -> None:
        engine = JobEngine(kind, client, logs_client=logs, log=task_logs[index])
        request = _request(local_backend.bucket, submit, index)
        job_names = JobNames("dl_load", "train", "manual__load", index)
        try:
            started.wait(timeout=120)  # all 50 creates at once
            handle = engine.ensure(request, job_names)
            created.append((index, handle.name, handle.created))
            retried.wait(timeout=120)
            again = engine.ensure(request, job_names)  # the task retried while its job runs (or has run)
            created.append((index, again.name, again.created))
            results[index] = engine.wait(handle.name, poll_interval=1.0, max_wait=240)
        except BaseException as err:
            errors[index] = err

    threads = [threading.Thread(target=task, args=(i,), daemon=True) for i in range(JOBS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert errors == {}, errors
    names = {index: name for index, name, new in created if new}
    assert len(names) == JOBS and len(set(names.values())) == JOBS, "one job created per task instance"
    assert sum(new for *_, new in created) == JOBS, "the retries created nothing"
    job_dirs = sorted(
        p.name for p in (local_backend.home / "jobs" / "training").iterdir() if not p.name.startswith(".")
    )
    assert job_dirs == sorted(names.values()), "0 duplicated, 0 invented"
    lost = [i for i in range(JOBS) if results.get(i, {}).get("TrainingJobStatus") != "Completed"]
    assert lost == [], "0 lost"
    copied: Counter[int] = Counter()
    for index, log in enumerate(task_logs):
        mine = [m for m in log.messages if f"task-{index} line" in m]
        assert sorted(mine) == [f"[algo-1] task-{index} line {n}" for n in range(LINES)], (index, mine)
        others = [m for m in log.messages if " line " in m and f"task-{index} line" not in m]
        assert others == [], f"task {index} copied another job's lines"
        copied[index] = len(mine)
    counts(
        f"{JOBS} jobs at once, each task retried once while running: {len(job_dirs)} created, "
        f"0 duplicated, {JOBS - len(lost)} Completed, 0 lost; {sum(copied.values())} log lines "
        f"({LINES} per job), each copied once"
    )
