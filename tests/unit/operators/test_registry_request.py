"""RegisterModelOperator: CreateModelPackageGroup if missing, then exactly one CreateModelPackage."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.operators.registry import RegisterModelOperator
from airflow_dl_provider.validation.requests import validate_request
from tests.unit.operators.stubs import IMAGE, NOW, not_found, use

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/digits/1"


def _operator(local_backend: Any, **kwargs: Any) -> RegisterModelOperator:
    args: dict[str, Any] = {
        "task_id": "register",
        "model_package_group_name": "digits",
        "model_artifacts": local_backend.uri("models/job-1/output/model.tar.gz"),
        "image_uri": IMAGE,
        "training_job_name": "job-1",
        "data_uris": {"train": local_backend.uri("data/train/")},
        "description": "digits classifier",
    }
    args.update(kwargs)
    return RegisterModelOperator(**args)


def test_sends_exactly_these_requests(local_backend: Any, sagemaker: Any, task_context: Any) -> None:
    client, stub = sagemaker
    key = deterministic_job_name("dl_test", "register", "manual__1", prefix="ti")
    metrics_uri = local_backend.uri(f"models/job-1/output/model-metrics-{key}.json")
    expected = {
        "ModelPackageGroupName": "digits",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": IMAGE,
                    "ModelDataUrl": local_backend.uri("models/job-1/output/model.tar.gz"),
                    # The environment the endpoint's and the transform's Model run with (ModelSource).
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                        "SAGEMAKER_REGION": "us-east-1",
                    },
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            "SupportedTransformInstanceTypes": ["ml.m5.large"],
        },
        "ModelApprovalStatus": "PendingManualApproval",
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}
        },
        "CustomerMetadataProperties": {
            "airflow:task-instance": key,
            "training-job": "job-1",
            "data:train": local_backend.uri("data/train/"),
            "metric:test_accuracy": "0.97",
        },
        "ClientToken": key,
        "ModelPackageDescription": "digits classifier",
    }
    validate_request("CreateModelPackage", expected)
    stub.add_response(
        "describe_training_job",
        {
            "TrainingJobName": "job-1",
            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1",
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": local_backend.uri("models/job-1/output/model.tar.gz")},
            "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": IMAGE},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
            "CreationTime": NOW,
            "FinalMetricDataList": [{"MetricName": "test_accuracy", "Value": 0.97, "Timestamp": NOW}],
        },
        {"TrainingJobName": "job-1"},
    )
    not_found(
        stub,
        "describe_model_package_group",
        "ModelPackageGroup arn:aws:sagemaker:us-east-1:123456789012:model-package-group/digits does not exist.",
        ModelPackageGroupName="digits",
    )
    stub.add_response(
        "create_model_package_group",
        {"ModelPackageGroupArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/digits"},
        {"ModelPackageGroupName": "digits"},
    )
    stub.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": []},
        {
            "ModelPackageGroupName": "digits",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 20,
        },
    )
    stub.add_response("create_model_package", {"ModelPackageArn": ARN}, expected)
    stub.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "digits",
            "ModelPackageVersion": 1,
            "ModelPackageArn": ARN,
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": "PendingManualApproval",
        },
        {"ModelPackageName": ARN},
    )
    op = _operator(local_backend)
    use(op, client)
    result = op.execute(task_context("manual__1", task_id="register"))
    assert result == {
        "model_package_arn": ARN,
        "model_package_version": 1,
        "model_package_group": "digits",
        "approval_status": "PendingManualApproval",
        "model_artifacts": local_backend.uri("models/job-1/output/model.tar.gz"),
        "training_job_name": "job-1",
        "metrics_s3_uri": metrics_uri,
    }
    body = local_backend.s3.get_object(Bucket=local_backend.bucket, Key=metrics_uri.split("/", 3)[3])[
        "Body"
    ].read()
    assert b'"test_accuracy": {"value": 0.97}' in body


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"approval_status": "approved"}, "approval_status: 'approved' is not one of"),
        ({"data_uris": {"train": "/local/path"}}, r"data_uris: \['train'\] are not s3:// URIs"),
    ],
)
def test_bad_inputs_fail_at_import_in_one_line(
    local_backend: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        _operator(local_backend, **kwargs)
    assert "\n" not in str(caught.value)


def test_a_malformed_group_lookup_is_not_taken_for_a_missing_group(
    local_backend: Any, sagemaker: Any
) -> None:
    from botocore.exceptions import ClientError

    client, stub = sagemaker
    op = _operator(local_backend)
    use(op, client)
    # A ValidationException that is no "does not exist": the group must not be created over it.
    stub.add_client_error(
        "describe_model_package_group",
        "ValidationException",
        "1 validation error detected: Value 'digits' at 'modelPackageGroupName' failed to satisfy constraint",
    )
    with pytest.raises(ClientError, match="1 validation error"):
        op._ensure_group()
