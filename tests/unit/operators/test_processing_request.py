"""ProcessingOperator: exactly one CreateProcessingJob of the API's shape; bad arguments fail at construction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.jobs.plan import content_address
from airflow_dl_provider.operators.processing import (
    ProcessingInput,
    ProcessingOperator,
    ProcessingOutput,
    ProcessingScript,
)
from airflow_dl_provider.specs.training import Cluster, Vpc
from airflow_dl_provider.validation.requests import validate_request
from tests.conftest import ROLE_ARN
from tests.unit.operators.stubs import NOW, not_found, use

if TYPE_CHECKING:
    from pathlib import Path

CODE = b"print('ok')\n"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/prep:1"


def _script(tmp_path: Path, location: str, **kwargs: Any) -> ProcessingScript:
    code = tmp_path / "prepare.py"
    code.write_bytes(CODE)
    return ProcessingScript(code=str(code), code_location=location, **kwargs)


def test_sends_exactly_this_request(
    local_backend: Any, sagemaker: Any, task_context: Any, tmp_path: Path
) -> None:
    client, stub = sagemaker
    raw = local_backend.upload("raw/a.csv", "x\n1\n")
    script = _script(tmp_path, local_backend.uri("code"), arguments=["--rows", 10])
    code_uri = local_backend.uri(f"code/code/{content_address(CODE)}/prepare.py")
    name = deterministic_job_name("dl_test", "prepare", "manual__1")
    expected = {
        "ProcessingJobName": name,
        "RoleArn": ROLE_ARN,
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/prepare.py"],
            "ContainerArguments": ["--rows", "10"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "ProcessingInputs": [
            {
                "InputName": "raw",
                "S3Input": {
                    "S3Uri": raw,
                    "LocalPath": "/opt/ml/processing/input/raw",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "ShardedByS3Key",
                    "S3CompressionType": "None",
                },
            },
            # As the SageMaker SDK's ScriptProcessor sends its code.
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": code_uri,
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "clean",
                    "S3Output": {
                        "S3Uri": local_backend.uri("clean"),
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "NetworkConfig": {
            "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
            "EnableNetworkIsolation": True,
        },
        "Environment": {"STAGE": "prod"},
        "Tags": [{"Key": "team", "Value": "ml"}],
    }
    validate_request("CreateProcessingJob", expected)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{name}"
    not_found(
        stub,
        "describe_processing_job",
        f"Could not find requested job with name {name}",
        ProcessingJobName=name,
    )
    stub.add_response("create_processing_job", {"ProcessingJobArn": arn}, expected)
    described = {k: v for k, v in expected.items() if k != "Tags"}
    stub.add_response(
        "describe_processing_job",
        {**described, "ProcessingJobArn": arn, "ProcessingJobStatus": "InProgress", "CreationTime": NOW},
        {"ProcessingJobName": name},
    )
    op = ProcessingOperator(
        task_id="prepare",
        role_arn=ROLE_ARN,
        inputs=[ProcessingInput("raw", raw, "/opt/ml/processing/input/raw", distribution="ShardedByS3Key")],
        outputs=[ProcessingOutput("clean", local_backend.uri("clean"), "/opt/ml/processing/output")],
        script=script,
        image_uri=IMAGE,
        cluster=Cluster(instance_type="ml.c5.2xlarge", instance_count=2, volume_size_gb=50),
        vpc=Vpc(["subnet-1"], ["sg-1"]),
        max_runtime_seconds=3600,
        environment={"STAGE": "prod"},
        enable_network_isolation=True,
        tags={"team": "ml"},
        wait_for_completion=False,
    )
    use(op, client)
    result = op.execute(task_context("manual__1", task_id="prepare"))

    assert result == {
        "job_name": name,
        "job_arn": arn,
        "status": "InProgress",
        "outputs": {"clean": local_backend.uri("clean")},
    }
    body = local_backend.s3.get_object(Bucket=local_backend.bucket, Key=code_uri.split("/", 3)[3])["Body"]
    assert body.read() == CODE


def test_default_image_is_the_pytorch_container_of_the_region(local_backend: Any, tmp_path: Path) -> None:
    op = ProcessingOperator(
        task_id="prepare", role_arn=ROLE_ARN, script=ProcessingScript(code="s3://b/code/prepare.py")
    )
    plan = op.build({})
    image = plan.request["AppSpecification"]["ImageUri"]
    assert image.startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu")
    assert plan.uploads == ()  # the code is in S3 already
    assert plan.request["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://b/code/prepare.py"
    assert plan.request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.xlarge"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"script": None}, r"^prepare: script: give a ProcessingScript \(code to run\), or pass image_uri$"),
        (
            {"inputs": [ProcessingInput("code", "s3://b/x", "/opt/ml/processing/x")]},
            r"inputs: the name 'code' is used twice",
        ),
        (
            {"outputs": [ProcessingOutput("o", "s3://b/x", "/opt/ml/processing/a")] * 2},
            r"outputs: the name 'o' is used twice",
        ),
        ({"cluster": Cluster(instance_type="ml.m5.xlarge", keep_alive_seconds=60)}, "no warm pools"),
        ({"max_runtime_seconds": 777601}, r"at most 777600 \(9 days\)"),
        ({"arguments": ["--x"]}, r"entrypoint, arguments: give them inside script="),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "task_id": "prepare",
        "role_arn": ROLE_ARN,
        "script": ProcessingScript(code="s3://b/code/prepare.py"),
    }
    with pytest.raises(ValueError, match=message):
        ProcessingOperator(**{**args, **kwargs})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ProcessingInput("raw", "s3://b/x", "/data/raw"),
            r"inputs\['raw'\]\.local_path: '/data/raw' must",
        ),
        (
            lambda: ProcessingOutput("o", "/tmp/out", "/opt/ml/processing/o"),
            r"outputs\['o'\]\.s3_uri: '/tmp/out' is",
        ),
        (
            lambda: ProcessingOutput("o", "s3://b/x", "/opt/ml/processing/o", "Sometimes"),
            "upload_mode: 'Sometimes'",
        ),
        (
            lambda: ProcessingInput("raw", "s3://b/x", "/opt/ml/processing/x", compression="Gzip"),
            "Gzip is only decompressed in Pipe",
        ),
        (
            lambda: ProcessingScript(code="missing.py", code_location="s3://b/c"),
            "script.code: 'missing.py' is not",
        ),
        (lambda: ProcessingScript(code=__file__), r"script.code_location: a local code file is uploaded"),
    ],
)
def test_specs_name_the_field_and_the_fix(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_templated_paths_are_checked_once_rendered() -> None:
    spec = ProcessingInput("raw", "{{ params.uri }}", "/opt/ml/processing/raw")
    spec.s3_uri = "relative/path"
    with pytest.raises(ValueError, match=r"inputs\['raw'\]\.s3_uri: 'relative/path' is not an s3:// URI"):
        spec.check(rendered=True)


def test_the_kinds_table_knows_every_status_the_service_reports() -> None:
    from airflow_dl_provider import service_behaviour
    from airflow_dl_provider.jobs.kinds import JOB_KINDS

    kind = JOB_KINDS["processing"]
    assert set(service_behaviour.PROCESSING.statuses) == kind.running | kind.terminal
    assert "Stopped" in kind.failed and "Stopping" in kind.running


def test_nested_specs_are_rendered_in_the_operators_own_copies() -> None:
    cluster = Cluster(instance_type="{{ params.instance }}")
    source = ProcessingInput("raw", "{{ params.bucket }}/raw/", "/opt/ml/processing/input/raw")
    op = ProcessingOperator(
        task_id="prepare",
        role_arn=ROLE_ARN,
        inputs=[source],
        cluster=cluster,
        script=ProcessingScript(code="s3://b/code/prepare.py", arguments=["--day", "{{ ds }}"]),
    )
    op.render_template_fields(
        {"params": {"instance": "ml.c5.xlarge", "bucket": "s3://b"}, "ds": "2026-01-02"}
    )

    assert op.cluster.instance_type == "ml.c5.xlarge"
    assert op.inputs[0].s3_uri == "s3://b/raw/"
    assert op.script is not None and op.script.arguments == ["--day", "2026-01-02"]
    # What the DAG author passed is left as it was: the next task instance renders its own copy.
    assert cluster.instance_type == "{{ params.instance }}" and source.s3_uri == "{{ params.bucket }}/raw/"
