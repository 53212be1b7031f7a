"""ProcessingOperator on the AWS path, beyond what every job kind shares (test_contract_jobs.py).

A cluster of two writes one log stream per host, named as the service names them; a retry after a
failed job starts the next attempt with the same, already uploaded script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.specs.training import Cluster
from tests.contract.job_cases import processing

if TYPE_CHECKING:
    from pathlib import Path

    from tests.contract.conftest import Aws


def test_each_host_logs_to_its_own_stream_and_every_line_is_copied_once(
    aws: Aws, tmp_path: Path, task_context: Any, task_log: Any
) -> None:
    op = processing(aws, tmp_path, cluster=Cluster(instance_type="ml.m5.xlarge", instance_count=2))
    result = op.execute(task_context(task_id=op.task_id))

    job = aws.service.jobs.get("ProcessingJob", result["job_name"])
    streams = aws.service.jobs.streams(job)
    hosts = [service_behaviour.PROCESSING.hosts.format(n=n) for n in (1, 2)]
    assert [s.split("/", 1)[1].rsplit("-", 1)[0] for s in streams] == hosts
    assert all(s.startswith(f"{result['job_name']}/") for s in streams)
    group = service_behaviour.LOG_STREAMS["processing"].group
    assert {
        s["logStreamName"] for s in aws.logs.describe_log_streams(logGroupName=group)["logStreams"]
    } == set(streams)
    for line in job.plan.log_lines:
        assert len([m for m in task_log.messages if m.endswith(f"] {line}")]) == 2, line


def test_a_retry_after_a_failed_job_reuses_the_uploaded_script(
    aws: Aws, tmp_path: Path, task_context: Any
) -> None:
    aws.service.jobs.plan("ProcessingJob", failure_reason="AlgorithmError: See job logs for more information")
    context = task_context(task_id="prepare")
    with pytest.raises(SageMakerJobError, match="AlgorithmError"):
        processing(aws, tmp_path).execute(context)
    aws.service.jobs.plan("ProcessingJob")
    result = processing(aws, tmp_path).execute(context)

    requests = aws.service.requests("CreateProcessingJob")
    assert [r["ProcessingJobName"] for r in requests] == [
        requests[0]["ProcessingJobName"],
        result["job_name"],
    ]
    assert result["job_name"].endswith("-r2")
    codes = [
        next(i for i in r["ProcessingInputs"] if i["InputName"] == "code")["S3Input"]["S3Uri"]
        for r in requests
    ]
    assert codes[0] == codes[1]
    listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="code/")["Contents"]
    assert [o["Key"] for o in listed] == [codes[0].split("/", 3)[3]]
