"""ProcessingOperator end to end on the local backend: a real process, SageMaker's /opt/ml layout, real S3.

Each test runs ``operator.execute`` as a worker would; the job runs detached, as a local process whose
``/opt/ml/processing/...`` paths are directories under the job's work folder.
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.operators.processing import (
    ProcessingInput,
    ProcessingOperator,
    ProcessingOutput,
    ProcessingScript,
)

if TYPE_CHECKING:
    from pathlib import Path

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"

# Reads every CSV under its input, writes the row count and what SageMaker told it about the job.
SCRIPT = textwrap.dedent(
    """
    import argparse, json, os, pathlib, sys
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--fail", default="")
    args = parser.parse_args()
    if args.fail:
        raise ValueError(args.fail)
    rows = sum(len(p.read_text().splitlines()) - 1 for p in sorted(pathlib.Path(args.input).rglob("*.csv")))
    out = pathlib.Path(args.output)
    (out / "nested").mkdir(parents=True, exist_ok=True)
    config = pathlib.Path(os.environ["CONFIG_DIR"])
    (out / "summary.json").write_text(json.dumps({
        "rows": rows,
        "argv": sys.argv[1:],
        "stage": os.environ["STAGE"],
        "resources": json.loads((config / "resourceconfig.json").read_text()),
        "job": json.loads((config / "processingjobconfig.json").read_text())["ProcessingJobName"],
    }))
    (out / "nested" / "rows.txt").write_text(str(rows))
    print(f"processed {rows} rows")
    """
)


def _operator(local_backend: Any, tmp_path: Path, **kwargs: Any) -> ProcessingOperator:
    code = tmp_path / "prepare.py"
    code.write_text(SCRIPT)
    arguments = ["--input", "/opt/ml/processing/input/raw", "--output=/opt/ml/processing/output/clean"]
    args: dict[str, Any] = {
        "task_id": "prepare",
        "role_arn": ROLE_ARN,
        "inputs": [ProcessingInput("raw", local_backend.uri("raw/"), "/opt/ml/processing/input/raw")],
        "outputs": [ProcessingOutput("clean", local_backend.uri("clean"), "/opt/ml/processing/output/clean")],
        "script": ProcessingScript(
            code=str(code),
            code_location=local_backend.uri("code"),
            arguments=[*arguments, *kwargs.pop("extra_arguments", [])],
        ),
        "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/prep:1",
        "environment": {"STAGE": "prod", "CONFIG_DIR": "/opt/ml/config"},
        "poll_interval": 0.2,
        "max_wait": 120,
    }
    return ProcessingOperator(**{**args, **kwargs})


def test_inputs_script_outputs_as_sagemaker_lays_them_out(
    local_backend: Any, tmp_path: Path, task_context: Any
) -> None:
    local_backend.upload("raw/a.csv", "x,y\n1,2\n3,4\n")
    local_backend.upload("raw/sub/b.csv", "x,y\n5,6\n")
    result = _operator(local_backend, tmp_path).execute(task_context(task_id="prepare"))

    assert result["status"] == "Completed"
    assert result["outputs"] == {"clean": local_backend.uri("clean")}
    summary = json.loads(
        local_backend.s3.get_object(Bucket=local_backend.bucket, Key="clean/summary.json")["Body"].read()
    )
    assert summary["rows"] == 3
    assert summary["stage"] == "prod"
    assert summary["resources"] == {"current_host": "algo-1", "hosts": ["algo-1"]}
    assert summary["job"] == result["job_name"]
    # The script got the container's paths, mapped to this machine's directories, in SageMaker's order.
    assert summary["argv"][0] == "--input" and summary["argv"][1].endswith("/algo-1/processing/input/raw")
    assert summary["argv"][2].endswith("/algo-1/processing/output/clean")
    nested = local_backend.s3.get_object(Bucket=local_backend.bucket, Key="clean/nested/rows.txt")
    assert nested["Body"].read() == b"3"
    # The code went up content-addressed, as the `code` input the SDK's ScriptProcessor sends.
    keys = [
        o["Key"]
        for o in local_backend.s3.list_objects_v2(Bucket=local_backend.bucket, Prefix="code/")["Contents"]
    ]
    assert len(keys) == 1 and keys[0].startswith("code/code/") and keys[0].endswith("/prepare.py")
    streams = local_backend.logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]
    names = [s["logStreamName"] for s in streams if s["logStreamName"].startswith(result["job_name"] + "/")]
    assert len(names) == 1 and names[0].startswith(f"{result['job_name']}/algo-1-")
    events = local_backend.logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=names[0])["events"]
    assert "processed 3 rows" in [e["message"] for e in events]


def test_a_failing_script_fails_the_job_with_its_error(
    local_backend: Any, tmp_path: Path, task_context: Any
) -> None:
    local_backend.upload("raw/a.csv", "x,y\n1,2\n")
    op = _operator(local_backend, tmp_path, extra_arguments=["--fail", "column y is empty"])
    with pytest.raises(SageMakerJobError) as caught:
        op.execute(task_context(task_id="prepare"))
    assert caught.value.failure_reason.startswith("AlgorithmError: ValueError: column y is empty")
    assert caught.value.failure_reason.endswith("exit code: 1")
    assert "Contents" not in local_backend.s3.list_objects_v2(Bucket=local_backend.bucket, Prefix="clean/")


def test_continuous_upload_is_refused_with_the_reason(
    local_backend: Any, tmp_path: Path, task_context: Any
) -> None:
    local_backend.upload("raw/a.csv", "x,y\n1,2\n")
    outputs = [
        ProcessingOutput("clean", local_backend.uri("clean"), "/opt/ml/processing/output/clean", "Continuous")
    ]
    with pytest.raises(SageMakerJobError, match="S3UploadMode Continuous is not simulated"):
        _operator(local_backend, tmp_path, outputs=outputs).execute(task_context(task_id="prepare"))


def test_an_empty_input_fails_before_any_job(local_backend: Any, tmp_path: Path, task_context: Any) -> None:
    from airflow_dl_provider.exceptions import PreflightError

    with pytest.raises(PreflightError, match=r"inputs\['raw'\]\.s3_uri"):
        _operator(local_backend, tmp_path).execute(task_context(task_id="prepare"))
    assert not (local_backend.home / "processing").exists()
