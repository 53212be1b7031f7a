"""RegisterModelOperator on the local backend: versions, traceability metadata, retries."""

from __future__ import annotations

import json
from typing import Any

from airflow_dl_provider.operators.registry import RegisterModelOperator

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"


def _operator(local_backend: Any, **kwargs: Any) -> RegisterModelOperator:
    args: dict[str, Any] = {
        "task_id": "register",
        "model_package_group_name": "digits",
        "model_artifacts": local_backend.uri("models/job-1/output/model.tar.gz"),
        "image_uri": IMAGE,
        "training_job_name": "job-1",
        "data_uris": {"train": local_backend.uri("data/train/"), "test": local_backend.uri("data/test/")},
        "metrics": {"test_accuracy": 0.97},
        "approval_status": "Approved",
    }
    args.update(kwargs)
    return RegisterModelOperator(**args)


def test_register_links_version_to_training_job_data_and_metrics(
    local_backend: Any, task_context: Any
) -> None:
    context = task_context("manual__register", task_id="register")
    op = _operator(local_backend)
    result = op.execute(context)
    json.dumps(result)
    assert result["model_package_version"] == 1
    assert result["model_package_arn"].endswith(":model-package/digits/1")
    assert result["approval_status"] == "Approved"
    assert context["ti"].pushed["sagemaker_dl_model_package"]["console_fragment"] == "model-registry/digits"

    described = op.hook.conn.describe_model_package(ModelPackageName=result["model_package_arn"])
    meta = described["CustomerMetadataProperties"]
    assert meta["training-job"] == "job-1"
    assert meta["data:train"] == local_backend.uri("data/train/")
    assert meta["metric:test_accuracy"] == "0.97"
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == local_backend.uri("models/job-1/output/model.tar.gz")
    stats_uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert stats_uri == result["metrics_s3_uri"]
    key = stats_uri.split(f"s3://{local_backend.bucket}/", 1)[1]
    report = json.loads(local_backend.s3.get_object(Bucket=local_backend.bucket, Key=key)["Body"].read())
    assert report["multiclass_classification_metrics"] == {"test_accuracy": {"value": 0.97}}

    # A retry of the same task instance returns the same version; another run registers the next one.
    assert _operator(local_backend).execute(context)["model_package_arn"] == result["model_package_arn"]
    other = _operator(local_backend).execute(task_context("manual__other", task_id="register"))
    assert other["model_package_version"] == 2
    listed = op.hook.conn.list_model_packages(ModelPackageGroupName="digits")["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in listed] == [1, 2]


def test_a_model_source_registers_and_a_retry_reattaches(local_backend: Any, task_context: Any) -> None:
    from airflow_dl_provider.specs.model import ModelSource

    source = ModelSource(
        model_artifacts=local_backend.uri("models/job-2/output/model.tar.gz"),
        image_uri=IMAGE,
        role_arn="arn:aws:iam::123456789012:role/SageMakerExecution",
    )
    context = task_context("manual__typed", task_id="register")

    def register() -> dict[str, Any]:
        return RegisterModelOperator(
            task_id="register",
            model_package_group_name="digits-typed",
            model=source,
            metrics={"test_accuracy": 0.9},
        ).execute(context)

    first, again = register(), register()
    assert again["model_package_arn"] == first["model_package_arn"]
    listed = RegisterModelOperator(
        task_id="register", model_package_group_name="digits-typed", model=source
    ).hook.conn.list_model_packages(ModelPackageGroupName="digits-typed")["ModelPackageSummaryList"]
    assert len(listed) == 1, "one version per task instance"
