"""GroundTruthLabelingOperator builds exactly one CreateLabelingJob request, pinned with a Stubber.

S3 (the built manifest, label config and template) is the local backend's embedded server; the
SageMaker client is a real boto3 client stubbed at the HTTP layer, so the request reaches botocore
exactly as it would reach AWS. Bad inputs fail in one line, before any SageMaker call.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.jobs.plan import content_address
from airflow_dl_provider.operators.labeling import GroundTruthLabelingOperator
from airflow_dl_provider.presets.labeling_ui import ui_template
from tests.conftest import ROLE_ARN

if TYPE_CHECKING:
    from collections.abc import Iterator

WORKTEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets"
LABELS = ["cat", "dog", "bird"]


@pytest.fixture
def images(local_backend: Any) -> list[str]:
    return [local_backend.upload(f"pets/{name}.png", b"\x89PNG") for name in ("b", "a", "c")]


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _operator(local_backend: Any, client: Any = None, **kwargs: Any) -> GroundTruthLabelingOperator:
    args: dict[str, Any] = {
        "task_id": "label",
        "task_type": "image_classification",
        "labels": LABELS,
        "input_prefix": local_backend.uri("pets/"),
        "output_path": local_backend.uri("labels"),
        "role_arn": ROLE_ARN,
        "workteam_arn": WORKTEAM,
    }
    args.update(kwargs)
    op = GroundTruthLabelingOperator(**args)
    if client is not None:
        _ = op.hook.s3, op.hook.logs  # built from the local client's endpoint, so before the swap
        op.hook.__dict__["conn"] = client  # swap the SageMaker client only; S3 stays on the embedded server
    return op


def _uploaded(plan: Any, uri: str) -> bytes:
    """The bytes the plan uploads to ``uri``."""
    return next(upload.data() for upload in plan.uploads if upload.uri == uri)


def test_image_classification_sends_exactly_this_request(
    local_backend: Any, images: list[str], sagemaker: Any, task_context: Any
) -> None:
    client, stub = sagemaker
    bucket = local_backend.bucket
    context = task_context("manual__2024-05-01", dag_id="pets", task_id="label")
    name = deterministic_job_name("pets", "label", "manual__2024-05-01")
    manifest = "".join(f'{{"source-ref": "s3://{bucket}/pets/{n}.png"}}\n' for n in "abc").encode()
    config = json.dumps(
        {"document-version": "2018-11-28", "labels": [{"label": x} for x in LABELS]}, sort_keys=True
    ).encode()
    template = ui_template("image_classification", header="Choose the animal in the picture").encode()
    # Each input at its own content address: an unchanged file has one key.
    inputs = f"s3://{bucket}/labels/labeling-inputs"
    uris = {
        name: f"{inputs}/{content_address(body)}/{name}"
        for name, body in (
            ("dataset.manifest", manifest),
            ("label-categories.json", config),
            ("template.liquid.html", template),
        )
    }
    expected: dict[str, Any] = {
        "LabelingJobName": name,
        "LabelAttributeName": "species",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": uris["dataset.manifest"]}}},
        "OutputConfig": {"S3OutputPath": f"s3://{bucket}/labels"},
        "RoleArn": ROLE_ARN,
        "LabelCategoryConfigS3Uri": uris["label-categories.json"],
        "HumanTaskConfig": {
            "WorkteamArn": WORKTEAM,
            "UiConfig": {"UiTemplateS3Uri": uris["template.liquid.html"]},
            "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-ImageMultiClass",
            "TaskTitle": "Which animal?",
            "TaskDescription": "Choose the animal in the picture",
            "NumberOfHumanWorkersPerDataObject": 5,
            "TaskTimeLimitInSeconds": 600,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:ACS-ImageMultiClass"
            },
            "TaskKeywords": ["images", "animals"],
            "TaskAvailabilityLifetimeInSeconds": 86400,
            "MaxConcurrentTaskCount": 100,
        },
        "StoppingConditions": {"MaxHumanLabeledObjectCount": 2},
        "Tags": [{"Key": "team", "Value": "vision"}],
    }
    stub.add_client_error(
        "describe_labeling_job",
        "ValidationException",
        "Requested resource not found.",
        expected_params={"LabelingJobName": name},
    )
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:labeling-job/{name}"
    stub.add_response("create_labeling_job", {"LabelingJobArn": arn}, expected)
    described = {
        **{k: v for k, v in expected.items() if k not in ("Tags", "StoppingConditions")},
        "LabelingJobArn": arn,
        "LabelingJobStatus": "InProgress",
        "LabelCounters": {},
        "JobReferenceCode": "abc",
        "CreationTime": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc),
        "LastModifiedTime": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc),
    }
    stub.add_response("describe_labeling_job", described, {"LabelingJobName": name})

    op = _operator(
        local_backend,
        client,
        label_attribute_name="species",
        workers_per_object=5,
        task_time_limit_seconds=600,
        task_availability_lifetime_seconds=86400,
        max_concurrent_tasks=100,
        max_human_labeled_objects=2,
        task_title="Which animal?",
        task_description="Choose the animal in the picture",
        task_keywords=["images", "animals"],
        tags={"team": "vision"},
        wait_for_completion=False,
    )
    result = op.execute(context)
    assert result["job_name"] == name and result["status"] == "InProgress"
    for suffix, body in (
        ("dataset.manifest", manifest),
        ("label-categories.json", config),
        ("template.liquid.html", template),
    ):
        key = uris[suffix].split(f"s3://{bucket}/", 1)[1]
        assert local_backend.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert context["ti"].pushed["sagemaker_dl_job"]["console_fragment"] == f"labeling-jobs/details/{name}"


def test_vendor_workforce_text_and_auto_labeling_shape(local_backend: Any, task_context: Any) -> None:
    text = "\n".join(f"review number {i}" for i in range(1300))
    uri = local_backend.upload("reviews/reviews.txt", text)
    vendor = "arn:aws:sagemaker:eu-west-1:123456789012:workteam/vendor-crowd/acme-labeling"
    op = _operator(
        local_backend,
        task_type="text_classification",
        input_prefix=None,
        input_text_uri=uri,
        workteam_arn=vendor,
        auto_labeling=True,
        region_name="eu-west-1",
        content_classifiers=["FreeOfPersonallyIdentifiableInformation"],
    )
    plan = op.render_plan(task_context())
    request = plan.request
    human = request["HumanTaskConfig"]
    assert human["WorkteamArn"] == vendor
    assert "PublicWorkforceTaskPrice" not in human
    assert (
        human["PreHumanTaskLambdaArn"] == "arn:aws:lambda:eu-west-1:568282634449:function:PRE-TextMultiClass"
    )
    assert request["LabelingJobAlgorithmsConfig"] == {
        "LabelingJobAlgorithmSpecificationArn": "arn:aws:sagemaker:eu-west-1:027400017018:labeling-job-algorithm-specification/text-classification"
    }
    assert request["InputConfig"]["DataAttributes"] == {
        "ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]
    }
    op.preflight(plan, task_context())  # 1,300 text objects: enough for automated labeling


def test_named_entity_recognition_uses_the_task_ui_arn(local_backend: Any, task_context: Any) -> None:
    uri = local_backend.upload("docs/sentences.txt", "Alice met Bob in Paris\n")
    op = _operator(
        local_backend,
        task_type="named_entity_recognition",
        input_prefix=None,
        input_text_uri=uri,
        region_name="ap-northeast-1",
    )
    plan = op.render_plan(task_context())
    request = plan.request
    assert request["HumanTaskConfig"]["UiConfig"] == {
        "HumanTaskUiArn": "arn:aws:sagemaker:ap-northeast-1:394669845002:human-task-ui/NamedEntityRecognition"
    }
    # The entity UI reads its instructions from the label category config, which must carry them.
    config = json.loads(_uploaded(plan, request["LabelCategoryConfigS3Uri"]))
    assert config["instructions"]["shortInstruction"] and config["instructions"]["fullInstruction"]


def test_template_types_keep_instructions_in_the_template(local_backend: Any, task_context: Any) -> None:
    uri = local_backend.upload("reviews/few.txt", "great\nawful\n")
    op = _operator(
        local_backend,
        task_type="text_classification",
        input_prefix=None,
        input_text_uri=uri,
        instructions="Choose the sentiment of the review.",
        task_description="What does the reviewer feel?",
    )
    plan = op.render_plan(task_context())
    request = plan.request
    config = json.loads(_uploaded(plan, request["LabelCategoryConfigS3Uri"]))
    # The documented config of every type but entity recognition: document-version and labels only.
    assert set(config) == {"document-version", "labels"}
    template = _uploaded(plan, request["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"]).decode()
    assert template == ui_template(
        "text_classification",
        header="What does the reviewer feel?",
        instructions="Choose the sentiment of the review.",
    )


# -- the public workforce: Mechanical Turk closed on 2026-09-30 ------------------------------------------

PUBLIC = "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default"
CLOSED = "Amazon Mechanical Turk (the public workforce) closed on 2026-09-30"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workteam_arn": PUBLIC},
        {"workteam_arn": PUBLIC.replace("us-east-1", "eu-west-1")},
        {"workteam_arn": None, "task_price_usd": 0.036},
        {"task_price_usd": 0.036},
    ],
)
def test_public_workforce_is_refused_at_import(local_backend: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as caught:
        _operator(local_backend, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert CLOSED in message and "no longer open to new AWS customers" in message
    assert "private or vendor work team" in message and "Label Studio" in message


def test_rendered_public_workteam_is_refused_before_any_job(
    local_backend: Any, images: list[str], sagemaker: Any, task_context: Any
) -> None:
    client, _stub = sagemaker  # nothing stubbed: any SageMaker call fails the test
    op = _operator(local_backend, client, workteam_arn="{{ params.team }}")
    op.workteam_arn = PUBLIC  # as rendering would set it
    with pytest.raises(PreflightError) as caught:
        op.execute(task_context())
    _one_line(caught.value, f"workteam_arn: {PUBLIC} is the public workforce; {CLOSED}")


@pytest.mark.parametrize(
    ("overrides", "start"),
    [
        ({"HumanTaskConfig": {"WorkteamArn": PUBLIC}}, "HumanTaskConfig.WorkteamArn: "),
        (
            {
                "HumanTaskConfig": {
                    "PublicWorkforceTaskPrice": {
                        "AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}
                    }
                }
            },
            "HumanTaskConfig.PublicWorkforceTaskPrice: ",
        ),
    ],
)
def test_overrides_cannot_bring_the_public_workforce_back(
    local_backend: Any,
    images: list[str],
    sagemaker: Any,
    task_context: Any,
    overrides: dict[str, Any],
    start: str,
) -> None:
    client, _stub = sagemaker
    with pytest.raises(PreflightError) as caught:
        _operator(local_backend, client, overrides=overrides).execute(task_context())
    _one_line(caught.value, start)
    assert CLOSED in str(caught.value)


# -- bad inputs: one line each, and no SageMaker call --------------------------------------------------


def _one_line(err: BaseException, start: str) -> None:
    message = str(err)
    assert message.startswith(start), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "start"),
    [
        (
            {"task_type": "video_tracking"},
            "label: task_type: 'video_tracking' is not a Ground Truth built-in task preset",
        ),
        ({"labels": ["cat", "dog", "cat"]}, "label: labels: 'cat' appear more than once"),
        ({"workteam_arn": None}, "label: workteam_arn: give a private or vendor work team"),
        ({"input_manifest_uri": "s3://b/m.manifest"}, "label: give exactly one of input_manifest_uri"),
        (
            {"label_attribute_name": "label-metadata"},
            "label: label_attribute_name: 'label-metadata' must not end",
        ),
        ({"task_type": "image_multilabel_classification", "auto_labeling": True}, "label: auto_labeling:"),
        # MaxHumanLabeledObjectCount is at least 1 (CreateLabelingJob): refused at import, not by the API.
        ({"max_human_labeled_objects": 0}, "label: max_human_labeled_objects must be >= 1, got 0"),
        ({"workers_per_object": 10}, "label: workers_per_object must be 1-9, got 10"),
        ({"poll_interval": 0}, "label: poll_interval must be > 0 seconds, got 0"),
        ({"if_exists": "replace"}, "label: if_exists: 'replace' is not one of reattach, fail, new"),
    ],
)
def test_bad_arguments_fail_at_construction(local_backend: Any, kwargs: dict[str, Any], start: str) -> None:
    with pytest.raises(ValueError) as caught:
        _operator(local_backend, **kwargs)
    _one_line(caught.value, start)


def test_both_labeling_services_refuse_a_bad_shared_argument_alike(local_backend: Any) -> None:
    """The shared arguments are checked once, in LabelingOperator: Label Studio says what Ground Truth says."""
    from airflow_dl_provider.operators.label_studio import LabelStudioLabelingOperator

    for bad in (
        {"labels": ["cat", "cat"]},
        {"input_text_uri": "s3://b/t.txt"},
        {"max_human_labeled_objects": 0},
    ):
        with pytest.raises(ValueError) as ground_truth:
            _operator(local_backend, **bad)
        with pytest.raises(ValueError) as label_studio:
            LabelStudioLabelingOperator(
                **{
                    "task_id": "label",
                    "task_type": "image_classification",
                    "labels": ["cat", "dog"],
                    "output_path": "s3://b/out",
                    "input_prefix": "s3://b/pets/",
                    **bad,
                }
            )
        assert str(label_studio.value) == str(ground_truth.value)


def test_region_without_ground_truth(
    local_backend: Any, images: list[str], sagemaker: Any, task_context: Any
) -> None:
    client, _stub = sagemaker
    with pytest.raises(PreflightError) as caught:
        _operator(local_backend, client, region_name="sa-east-1").execute(task_context())
    _one_line(caught.value, "region: Ground Truth built-in task types are not available in 'sa-east-1'")


def test_auto_labeling_under_the_service_minimum(
    local_backend: Any, images: list[str], sagemaker: Any, task_context: Any
) -> None:
    client, _stub = sagemaker
    with pytest.raises(PreflightError) as caught:
        _operator(local_backend, client, auto_labeling=True).execute(task_context())
    _one_line(
        caught.value,
        "auto_labeling: Ground Truth needs at least 1250 objects for automated data labeling; this data set has 3",
    )


def test_empty_input_prefix(local_backend: Any, sagemaker: Any, task_context: Any) -> None:
    client, _stub = sagemaker
    local_backend.upload("pets/readme.txt", "not an image")
    with pytest.raises(PreflightError) as caught:
        _operator(local_backend, client).execute(task_context())
    _one_line(caught.value, f"input_prefix: no data objects to label in s3://{local_backend.bucket}/pets/")


def test_missing_input_manifest(local_backend: Any, sagemaker: Any, task_context: Any) -> None:
    client, _stub = sagemaker
    with pytest.raises(PreflightError) as caught:
        _operator(
            local_backend, client, input_prefix=None, input_manifest_uri=local_backend.uri("nope.manifest")
        ).execute(task_context())
    _one_line(caught.value, "input_manifest_uri: cannot read")


def test_retried_stage_does_not_upload_again(
    local_backend: Any, images: list[str], task_context: Any, task_log: Any
) -> None:
    context = task_context()
    for _ in range(2):
        op = _operator(local_backend)
        op.stage(op.render_plan(context))
    assert sum(line.startswith("Uploaded ") for line in task_log.text.splitlines()) == 3
    assert task_log.text.count("already uploaded") == 3
