"""BatchTransformOperator: CreateModel then exactly one CreateTransformJob; the service's rules first."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.operators.transform import BatchTransformOperator
from airflow_dl_provider.specs.model import content_addressed_model_name, inference_environment
from airflow_dl_provider.validation.requests import validate_request
from tests.conftest import ROLE_ARN
from tests.unit.operators.stubs import IMAGE, NOW, not_found, use


def _operator(local_backend: Any, **kwargs: Any) -> BatchTransformOperator:
    args: dict[str, Any] = {
        "task_id": "transform",
        "input_s3_uri": local_backend.uri("batch/in/"),
        "output_path": local_backend.uri("batch/out"),
        "model_artifacts": local_backend.uri("models/model.tar.gz"),
        "role_arn": ROLE_ARN,
        "max_payload_mb": 5,
        "max_concurrent_transforms": 4,
        "input_filter": "$[1:]",
        "join_source": "Input",
        "output_filter": "$[0,-1]",
        "wait_for_completion": False,
    }
    args.update(kwargs)
    return BatchTransformOperator(**args)


def test_sends_exactly_these_requests(local_backend: Any, sagemaker: Any, task_context: Any) -> None:
    client, stub = sagemaker
    local_backend.upload("batch/in/part-0.csv", "id-0,1,2\n")
    model_uri = local_backend.upload("models/model.tar.gz", b"model")
    container = {
        "Image": IMAGE,
        "ModelDataUrl": model_uri,
        "Environment": inference_environment("inference.py", "us-east-1"),
    }
    model_name = content_addressed_model_name("dl_test-transform", container, ROLE_ARN)
    expected_model = {
        "ModelName": model_name,
        "PrimaryContainer": {
            "Image": IMAGE,
            "ModelDataUrl": model_uri,
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": "us-east-1",
            },
        },
        "ExecutionRoleArn": ROLE_ARN,
    }
    name = deterministic_job_name("dl_test", "transform", "manual__1")
    expected = {
        "TransformJobName": name,
        "ModelName": model_name,
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": local_backend.uri("batch/in/")}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": local_backend.uri("batch/out"),
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 5,
        "MaxConcurrentTransforms": 4,
        "DataProcessing": {"InputFilter": "$[1:]", "OutputFilter": "$[0,-1]", "JoinSource": "Input"},
    }
    validate_request("CreateModel", expected_model)
    validate_request("CreateTransformJob", expected)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}"
    model_arn = f"arn:aws:sagemaker:us-east-1:123456789012:model/{model_name.lower()}"
    not_found(stub, "describe_model", f'Could not find model "{model_arn}".', ModelName=model_name)
    stub.add_response("create_model", {"ModelArn": model_arn}, expected_model)
    # DescribeTransformJob's own not-found message (not DescribeTrainingJob's "Requested resource not found.").
    not_found(
        stub,
        "describe_transform_job",
        f"Could not find requested job with name {name}",
        TransformJobName=name,
    )
    stub.add_response("create_transform_job", {"TransformJobArn": arn}, expected)
    stub.add_response(
        "describe_transform_job",
        {
            "TransformJobName": name,
            "TransformJobArn": arn,
            "TransformJobStatus": "InProgress",
            "ModelName": model_name,
            "TransformInput": expected["TransformInput"],
            "TransformOutput": expected["TransformOutput"],
            "TransformResources": expected["TransformResources"],
            "CreationTime": NOW,
        },
        {"TransformJobName": name},
    )
    op = _operator(local_backend)
    use(op, client)
    result = op.execute(task_context("manual__1", task_id="transform"))
    assert result == {
        "job_name": name,
        "job_arn": arn,
        "status": "InProgress",
        "output_path": local_backend.uri("batch/out"),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"max_concurrent_transforms": 10, "max_payload_mb": 20},
            r"10 x 20 = 200 MB, over the service's 100 MB",
        ),
        ({"max_concurrent_transforms": None, "max_payload_mb": 101}, "max_payload_mb: 101 is over"),
        (
            {"split_type": "None", "batch_strategy": "MultiRecord"},
            "batch_strategy='MultiRecord' needs split_type",
        ),
        (
            {"split_type": "None", "batch_strategy": "SingleRecord"},
            "needs split_type Line, RecordIO or TFRecord",
        ),
        ({"content_type": "application/x-npy"}, "input_filter and join_source need CSV or JSON input"),
        ({"model_name": "existing"}, "set exactly one"),
        ({"assemble_with": "Lines"}, "assemble_with: 'Lines' is not one of"),
    ],
)
def test_bad_inputs_fail_at_import_in_one_line(
    local_backend: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        _operator(local_backend, **kwargs)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("transform: ")


def test_existing_model_name_sends_no_create_model(local_backend: Any) -> None:
    op = _operator(local_backend, model_artifacts=None, role_arn=None, model_name="digits-v3")
    assert op.build({}).request["ModelName"] == "digits-v3"
