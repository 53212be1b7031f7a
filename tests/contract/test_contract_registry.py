"""The model registry and champion/challenger on the AWS path: versions, idempotent retries, approvals."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.operators.evaluation import ChampionChallengerOperator, ChampionLookupOperator
from airflow_dl_provider.operators.registry import RegisterModelOperator

if TYPE_CHECKING:
    from tests.contract.conftest import Aws

GROUP = "digits-classifier"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"


def _register(aws: Aws, version: str = "v1", **kwargs: Any) -> RegisterModelOperator:
    args: dict[str, Any] = {
        "task_id": "register",
        "model_package_group_name": GROUP,
        "model_artifacts": aws.upload(f"models/{version}/output/model.tar.gz", b"model"),
        "image_uri": IMAGE,
        "training_job_name": f"train-{version}",
        "data_uris": {"train": aws.uri("data/train/")},
    }
    return RegisterModelOperator(**{**args, **kwargs})


def test_registers_a_version_in_a_new_group(aws: Aws, task_context: Any) -> None:
    aws.service.jobs.add_completed_training_job("train-v1", {"validation_accuracy": 0.93})
    result = _register(aws).execute(task_context(task_id="register"))

    service = aws.service
    # The group did not exist: the service's own not-found answer, then one create.
    assert (
        service.calls[service.operations().index("DescribeModelPackageGroup")].error == "ValidationException"
    )
    assert service.count("CreateModelPackageGroup") == 1 and service.count("CreateModelPackage") == 1
    assert result["model_package_arn"] == f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/1"
    assert result["model_package_version"] == 1
    assert result["approval_status"] == "PendingManualApproval"
    # The metrics came from the training job, and are where ModelMetrics says.
    report = json.loads(aws.read(result["metrics_s3_uri"]))
    assert report["multiclass_classification_metrics"] == {"validation_accuracy": {"value": 0.93}}
    package = service.registry.packages[result["model_package_arn"]].request
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == result["metrics_s3_uri"]
    assert package["CustomerMetadataProperties"]["training-job"] == "train-v1"
    assert package["CustomerMetadataProperties"]["metric:validation_accuracy"] == "0.93"


def test_retried_registration_creates_no_second_version(aws: Aws, task_context: Any) -> None:
    context = task_context(task_id="register")
    first = _register(aws, metrics={"accuracy": 0.9}).execute(context)
    again = _register(aws, metrics={"accuracy": 0.9}).execute(context)

    assert again["model_package_arn"] == first["model_package_arn"]
    assert aws.service.count("CreateModelPackage") == 1
    assert aws.service.count("CreateModelPackageGroup") == 1
    # Another run registers the next version.
    other = _register(aws, "v2", metrics={"accuracy": 0.95}).execute(
        task_context("manual__2", task_id="register")
    )
    assert other["model_package_version"] == 2


def test_champion_challenger_promotes_a_winner_and_lookup_finds_it(aws: Aws, task_context: Any) -> None:
    lookup = ChampionLookupOperator(task_id="champion", model_package_group_name=GROUP)
    champion_run = _register(aws, "v1", metrics={"accuracy": 0.90}).execute(task_context(task_id="register"))
    assert lookup.execute(task_context(task_id="champion"))["found"] is False

    first = ChampionChallengerOperator(
        task_id="decide",
        challenger_package_arn=champion_run["model_package_arn"],
        challenger_score=0.90,
        champion_score=None,
        decision_prefix=aws.uri("decisions"),
        metric="accuracy",
    ).execute(task_context(task_id="decide"))
    assert first["decision"] == "promoted"
    assert json.loads(aws.read(first["decision_uri"]))["approval_status"] == "Approved"

    found = ChampionLookupOperator(task_id="champion", model_package_group_name=GROUP).execute(
        task_context(task_id="champion")
    )
    assert found["found"] is True and found["model_package_arn"] == champion_run["model_package_arn"]
    assert found["model_artifacts"] == aws.uri("models/v1/output/model.tar.gz")
    assert found["metrics"] == {"accuracy": 0.9} and found["training_job_name"] == "train-v1"

    challenger = _register(aws, "v2", metrics={"accuracy": 0.85}).execute(
        task_context("manual__2", task_id="register")
    )
    kept = ChampionChallengerOperator(
        task_id="decide",
        challenger_package_arn=challenger["model_package_arn"],
        challenger_score=0.85,
        champion_score=0.90,
        champion_package_arn=found["model_package_arn"],
    ).execute(task_context("manual__2", task_id="decide"))
    assert kept["decision"] == "kept_champion"
    described = aws.service.registry.describe_model_package(challenger["model_package_arn"])
    assert described["ModelApprovalStatus"] == "Rejected"
    assert "does not beat champion" in described["ApprovalDescription"]
    again = ChampionLookupOperator(task_id="champion", model_package_group_name=GROUP).execute(
        task_context("manual__2", task_id="champion")
    )
    assert again["model_package_arn"] == champion_run["model_package_arn"]


def test_a_retry_finds_its_version_by_the_task_key_after_the_client_token_expired(
    aws: Aws, task_context: Any
) -> None:
    context = task_context(task_id="register")
    first = _register(aws, metrics={"accuracy": 0.9}).execute(context)
    # ClientToken makes a create idempotent only for a while; the task key in the metadata does not expire.
    aws.service.registry._tokens.clear()
    again = _register(aws, metrics={"accuracy": 0.9}).execute(context)

    assert again["model_package_arn"] == first["model_package_arn"]
    assert aws.service.count("CreateModelPackage") == 1
    assert len(aws.service.registry.packages) == 1


def test_registration_waits_until_the_service_completes_it_and_links_the_registry(
    aws: Aws, task_context: Any
) -> None:
    context = task_context(task_id="register")
    result = _register(aws, metrics={"accuracy": 0.9}).execute(context)

    package = aws.service.registry.packages[result["model_package_arn"]]
    # Pending, InProgress, then Completed: the task returned only once it was Completed.
    assert package.describes >= 3
    link = context["ti"].pushed["sagemaker_dl_model_package"]
    assert link["console_fragment"] == f"model-registry/{GROUP}"


def test_a_model_source_registers_the_same_package_as_the_flat_arguments(aws: Aws, task_context: Any) -> None:
    from airflow_dl_provider.specs.model import ModelSource

    artifacts = aws.upload("models/v1/output/model.tar.gz", b"model")
    flat = _register(aws, metrics={"accuracy": 0.9}).execute(task_context(task_id="register"))
    typed = RegisterModelOperator(
        task_id="register",
        model_package_group_name=GROUP,
        model=ModelSource(model_artifacts=artifacts, image_uri=IMAGE),  # no role: no Model is created
        training_job_name="train-v1",
        data_uris={"train": aws.uri("data/train/")},
        metrics={"accuracy": 0.9},
    ).execute(task_context("manual__2", task_id="register"))

    packages = aws.service.registry.packages
    flat_spec = packages[flat["model_package_arn"]].request["InferenceSpecification"]
    typed_spec = packages[typed["model_package_arn"]].request["InferenceSpecification"]
    assert typed_spec == flat_spec
