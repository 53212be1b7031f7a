"""DistributedTrainingOperator builds exactly one CreateTrainingJob request, pinned with a Stubber.

S3 (pre-flight prefix checks, source upload) is the local backend's embedded server; the SageMaker
client is a real boto3 client stubbed at the HTTP layer, so the request reaches botocore exactly as it
would reach AWS.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.operators.training import DistributedTrainingOperator, source_archive

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Not imported from tests.conftest: importing conftest.py a second time, as a module of that name,
# would run its module code again and point AIRFLOW_HOME at a new, unmigrated directory.
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"
METRIC = r"test_accuracy=([0-9.]+)"


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "lib").mkdir(parents=True)
    (root / "train.py").write_text("print('training')\n")
    (root / "lib" / "model.py").write_text("WIDTH = 128\n")
    (root / "requirements.txt").write_text("numpy\n")
    return root


@pytest.fixture
def data(local_backend: Any) -> dict[str, str]:
    return {
        "train": local_backend.upload("data/train/part-0000.csv", "label,p0\n1,2\n"),
        "validation": local_backend.upload("data/validation/validation.csv", "label,p0\n1,2\n"),
    }


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _operator(local_backend: Any, source_dir: Path, **kwargs: Any) -> DistributedTrainingOperator:
    args: dict[str, Any] = {
        "task_id": "train",
        "role_arn": ROLE_ARN,
        "output_path": local_backend.uri("output"),
        "channels": {
            "train": {"s3_uri": local_backend.uri("data/train/"), "distribution": "ShardedByS3Key"},
            "validation": local_backend.uri("data/validation/"),
        },
        "entry_point": "train.py",
        "source_dir": str(source_dir),
    }
    args.update(kwargs)
    return DistributedTrainingOperator(**args)


def _full_operator(local_backend: Any, source_dir: Path) -> DistributedTrainingOperator:
    return _operator(
        local_backend,
        source_dir,
        instance_type="ml.p3dn.24xlarge",
        instance_count=2,
        distribution="torch_distributed",
        hyperparameters={"epochs": 3, "lr": 0.1, "optimizer": "sgd", "layers": [64, 32], "amp": True},
        metric_definitions={"test_accuracy": METRIC},
        max_runtime_seconds=7200,
        use_spot=True,
        spot_max_wait_seconds=10800,
        checkpoint_s3_uri=local_backend.uri("checkpoints/train"),
        output_kms_key_id=KMS,
        subnets=["subnet-0a1b2c3d"],
        security_group_ids=["sg-0a1b2c3d"],
        environment={"NCCL_DEBUG": "INFO"},
        tags={"team": "vision", "cost-center": "42"},
        overrides={
            "ResourceConfig": {"VolumeSizeInGB": 400},
            "StoppingCondition": {"MaxPendingTimeInSeconds": 7200},
            "RetryStrategy": {"MaximumRetryAttempts": 2},
        },
        wait_for_completion=False,
    )


def _use(op: DistributedTrainingOperator, client: Any) -> None:
    # hook and hook.conn are cached properties: seeding the instance dict swaps the SageMaker client only.
    op.hook.__dict__["conn"] = client


def _describe(name: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/output/{name}/output/model.tar.gz"},
        "AlgorithmSpecification": request["AlgorithmSpecification"],
        "ResourceConfig": request["ResourceConfig"],
        "StoppingCondition": request["StoppingCondition"],
        "CreationTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    }


def test_full_configuration_sends_exactly_this_request(
    local_backend: Any, source_dir: Path, data: dict[str, str], sagemaker: Any, task_context: Any
) -> None:
    client, stub = sagemaker
    context = task_context("manual__2024-05-01", dag_id="vision")
    name = deterministic_job_name("vision", "train", "manual__2024-05-01")
    digest = source_archive(source_dir)[1]
    bucket = local_backend.bucket
    submit = f"s3://{bucket}/output/source/{digest}/sourcedir.tar.gz"
    expected: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "test_accuracy", "Regex": METRIC}],
        },
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output", "KmsKeyId": KMS},
        "ResourceConfig": {
            "InstanceType": "ml.p3dn.24xlarge",
            "InstanceCount": 2,
            "VolumeSizeInGB": 400,
        },
        "StoppingCondition": {
            "MaxRuntimeInSeconds": 7200,
            "MaxWaitTimeInSeconds": 10800,
            "MaxPendingTimeInSeconds": 7200,
        },
        "HyperParameters": {
            "epochs": "3",
            "lr": "0.1",
            "optimizer": '"sgd"',
            "layers": "[64, 32]",
            "amp": "true",
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(submit),
            "sagemaker_region": '"us-east-1"',
            "sagemaker_container_log_level": "20",
            "sagemaker_torch_distributed_enabled": "true",
        },
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": False,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/data/train/",
                        "S3DataDistributionType": "ShardedByS3Key",
                    }
                },
            },
            {
                "ChannelName": "validation",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/data/validation/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            },
        ],
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": f"s3://{bucket}/checkpoints/train", "LocalPath": "/opt/ml/checkpoints"},
        "VpcConfig": {"Subnets": ["subnet-0a1b2c3d"], "SecurityGroupIds": ["sg-0a1b2c3d"]},
        "Environment": {"NCCL_DEBUG": "INFO"},
        "Tags": [{"Key": "team", "Value": "vision"}, {"Key": "cost-center", "Value": "42"}],
        "RetryStrategy": {"MaximumRetryAttempts": 2},
    }
    stub.add_client_error(
        "describe_training_job",
        "ValidationException",
        "Requested resource not found.",
        expected_params={"TrainingJobName": name},
    )
    stub.add_response(
        "create_training_job",
        {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"},
        expected,
    )
    stub.add_response("describe_training_job", _describe(name, expected), {"TrainingJobName": name})

    op = _full_operator(local_backend, source_dir)
    _use(op, client)
    result = op.execute(context)

    assert result["job_name"] == name
    assert result["status"] == "InProgress"
    assert op.job_name == name
    json.dumps(result)
    # The source archive was uploaded where the request points, byte for byte.
    body = local_backend.s3.get_object(Bucket=bucket, Key=f"output/source/{digest}/sourcedir.tar.gz")["Body"]
    assert body.read() == source_archive(source_dir)[0]
    # The console link went to XCom.
    link = context["ti"].pushed["sagemaker_dl_job"]
    assert link["console_fragment"] == f"jobs/{name}"
    assert link["region_name"] == "us-east-1"


def test_hyperparameters_decode_back_to_the_arguments(
    local_backend: Any, source_dir: Path, data: dict[str, str], task_context: Any
) -> None:
    hps = {"epochs": 3, "lr": 0.1, "name": "resnet", "flags": {"a": 1}, "tiny": 1e-8, "off": False}
    op = _operator(local_backend, source_dir, hyperparameters=hps, instance_type="ml.m5.large")
    request = op.render_plan(task_context()).request
    sent = request["HyperParameters"]
    assert all(isinstance(v, str) for v in sent.values())
    assert {k: json.loads(v) for k, v in sent.items() if not k.startswith("sagemaker_")} == hps
    assert json.loads(sent["sagemaker_program"]) == "train.py"
    assert json.loads(sent["sagemaker_submit_directory"]).startswith(local_backend.uri("output/source/"))
    assert json.loads(sent["sagemaker_submit_directory"]).endswith("/sourcedir.tar.gz")
    # A CPU type gets the CPU container and no distribution flags.
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith(
        ":2.5.1-cpu-py311-ubuntu22.04-sagemaker"
    )
    assert not any(k.startswith("sagemaker_torch") for k in sent)


@pytest.mark.parametrize(
    ("distribution", "instance_type", "expected"),
    [
        ("pytorch_ddp", "ml.p4d.24xlarge", {"sagemaker_pytorch_ddp_enabled": "true"}),
        (
            "smdataparallel",
            "ml.p4d.24xlarge",
            {
                "sagemaker_distributed_dataparallel_enabled": "true",
                "sagemaker_distributed_dataparallel_custom_mpi_options": '""',
                "sagemaker_instance_type": '"ml.p4d.24xlarge"',
            },
        ),
        (
            "mpi",
            "ml.c5.xlarge",
            {
                "sagemaker_mpi_enabled": "true",
                "sagemaker_mpi_num_of_processes_per_host": "1",
                "sagemaker_mpi_custom_mpi_options": '""',
            },
        ),
    ],
)
def test_distribution_hyperparameters(
    local_backend: Any,
    source_dir: Path,
    task_context: Any,
    distribution: str,
    instance_type: str,
    expected: dict[str, str],
) -> None:
    op = _operator(local_backend, source_dir, distribution=distribution, instance_type=instance_type)
    sent = op.render_plan(task_context()).request["HyperParameters"]
    assert {k: sent[k] for k in expected} == expected


def _submit_uri(op: DistributedTrainingOperator, context: Any) -> str:
    return json.loads(op.render_plan(context).request["HyperParameters"]["sagemaker_submit_directory"])


def test_source_archive_is_content_addressed(
    local_backend: Any, source_dir: Path, tmp_path: Path, task_context: Any
) -> None:
    import os
    import shutil

    context = task_context()
    first = _submit_uri(_operator(local_backend, source_dir), context)
    assert first == _submit_uri(_operator(local_backend, source_dir), context)

    # Same files elsewhere, written later, with other times and a __pycache__: same archive.
    copy = tmp_path / "copy"
    shutil.copytree(source_dir, copy)
    os.utime(copy / "train.py", (1, 1))
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    assert _submit_uri(_operator(local_backend, copy), context) == first

    (copy / "lib" / "model.py").write_text("WIDTH = 256\n")
    changed = _submit_uri(_operator(local_backend, copy), context)
    assert changed != first

    (copy / "lib" / "model.py").write_text("WIDTH = 128\n")
    (copy / "lib" / "extra.py").write_text("")
    assert _submit_uri(_operator(local_backend, copy), context) not in (first, changed)


def test_s3_source_dir_is_passed_through(local_backend: Any, task_context: Any) -> None:
    uri = local_backend.uri("code/sourcedir.tar.gz")
    op = DistributedTrainingOperator(
        task_id="train",
        role_arn=ROLE_ARN,
        output_path=local_backend.uri("output"),
        entry_point="train.py",
        source_dir=uri,
        instance_type="ml.m5.large",
    )
    request = op.render_plan(task_context()).request
    assert json.loads(request["HyperParameters"]["sagemaker_submit_directory"]) == uri
    assert "InputDataConfig" not in request


def test_image_uri_mode_sends_no_script_mode_hyperparameters(local_backend: Any, task_context: Any) -> None:
    op = DistributedTrainingOperator(
        task_id="train",
        role_arn=ROLE_ARN,
        output_path=local_backend.uri("output"),
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1",
        instance_type="ml.m5.large",
        hyperparameters={"epochs": 2},
    )
    request = op.render_plan(task_context()).request
    assert (
        request["AlgorithmSpecification"]["TrainingImage"]
        == "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1"
    )
    assert request["HyperParameters"] == {"epochs": "2"}


def test_retried_stage_does_not_upload_again(
    local_backend: Any, source_dir: Path, data: dict[str, str], task_context: Any, task_log: Any
) -> None:
    context = task_context()
    for _ in range(2):
        op = _operator(local_backend, source_dir, instance_type="ml.m5.large")
        op.stage(op.render_plan(context))
    assert task_log.text.count("Uploaded source_dir") == 1  # the archive, once
    assert task_log.text.count("already uploaded") == 1


@pytest.mark.parametrize(
    ("instance_type", "image"),
    [
        # Types the instance table lacks still get the GPU container: the family says GPU.
        ("ml.g5.4xlarge", "pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"),
        ("ml.g6e.12xlarge", "pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"),
        ("ml.p5e.48xlarge", "pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"),
        # Trainium runs the Neuron container, built for its own Python.
        ("ml.trn1.32xlarge", "pytorch-training-neuronx:2.5.1-neuronx-py310-sdk2.22.0-ubuntu22.04"),
        ("ml.c5.2xlarge", "pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"),
    ],
)
def test_image_follows_the_instance_family(
    local_backend: Any, source_dir: Path, task_context: Any, instance_type: str, image: str
) -> None:
    op = _operator(local_backend, source_dir, instance_type=instance_type)
    request = op.render_plan(task_context()).request
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        f"763104351884.dkr.ecr.us-east-1.amazonaws.com/{image}"
    )


@pytest.mark.parametrize(
    ("region", "registry"),
    [
        ("af-south-1", "626614931356.dkr.ecr.af-south-1.amazonaws.com"),
        ("eu-south-1", "692866216735.dkr.ecr.eu-south-1.amazonaws.com"),
        ("cn-north-1", "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com"),
    ],
)
def test_image_comes_from_the_regions_registry(
    local_backend: Any, source_dir: Path, task_context: Any, region: str, registry: str
) -> None:
    op = _operator(local_backend, source_dir, instance_type="ml.m5.large", region_name=region)
    request = op.render_plan(task_context()).request
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        f"{registry}/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
    )
    assert json.loads(request["HyperParameters"]["sagemaker_region"]) == region


def test_image_uri_without_script_mode_gets_plain_string_hyperparameters(
    local_backend: Any, task_context: Any
) -> None:
    # The SDK's plain Estimator sends str(value); only framework (script-mode) estimators send JSON.
    op = DistributedTrainingOperator(
        task_id="train",
        role_arn=ROLE_ARN,
        output_path=local_backend.uri("output"),
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1",
        instance_type="ml.m5.large",
        hyperparameters={"epochs": 2, "optimizer": "sgd", "layers": [64, 32], "amp": True, "lr": 0.1},
    )
    sent = op.render_plan(task_context()).request["HyperParameters"]
    assert sent == {"epochs": "2", "optimizer": "sgd", "layers": "[64, 32]", "amp": "True", "lr": "0.1"}


def test_volume_kms_key_is_sent_for_an_ebs_instance(
    local_backend: Any, source_dir: Path, task_context: Any
) -> None:
    op = _operator(local_backend, source_dir, instance_type="ml.p3.16xlarge", volume_kms_key_id=KMS)
    assert op.render_plan(task_context()).request["ResourceConfig"]["VolumeKmsKeyId"] == KMS


def test_network_isolation_ships_the_code_in_a_code_channel(
    local_backend: Any, source_dir: Path, data: dict[str, str], task_context: Any
) -> None:
    context = task_context()
    op = _operator(
        local_backend,
        source_dir,
        instance_type="ml.m5.large",
        input_mode="Pipe",
        enable_network_isolation=True,
    )
    plan = op.render_plan(context)
    request = plan.request
    digest = source_archive(source_dir)[1]
    archive = local_backend.uri(f"output/source/{digest}/sourcedir.tar.gz")
    # As the SageMaker SDK sends it: the toolkit reads the archive from the channel, not from S3.
    assert json.loads(request["HyperParameters"]["sagemaker_submit_directory"]) == (
        "/opt/ml/input/data/code/sourcedir.tar.gz"
    )
    assert request["EnableNetworkIsolation"] is True
    code = request["InputDataConfig"][-1]
    assert code == {
        "ChannelName": "code",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": archive,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }
    op.preflight(plan, context)  # the archive is not there yet: stage() uploads it next
    op.stage(plan)
    body = local_backend.s3.get_object(
        Bucket=local_backend.bucket, Key=f"output/source/{digest}/sourcedir.tar.gz"
    )
    assert body["Body"].read() == source_archive(source_dir)[0]


def test_worst_case_cost_log_names_the_price_region(
    local_backend: Any, source_dir: Path, data: dict[str, str], task_context: Any, task_log: Any
) -> None:
    context = task_context()
    op = _operator(local_backend, source_dir, instance_type="ml.m5.large", max_runtime_seconds=3600)
    op.preflight(op.render_plan(context), context)
    assert (
        "Worst-case cost: up to $0.12: 1 x ml.m5.large for max_runtime_seconds=3600 at the us-east-1 "
        "on-demand price" in task_log.text
    )
    elsewhere = _operator(local_backend, source_dir, instance_type="ml.m5.large", region_name="eu-west-1")
    elsewhere.preflight(elsewhere.render_plan(context), context)
    assert (
        "Worst-case cost: not estimated: no list price for ml.m5.large in eu-west-1 (the built-in prices are "
        "us-east-1's); pass price_per_hour" in task_log.text
    )
