"""Every built-in task preset makes a CreateLabelingJob request the service model accepts, per region."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.labeling import (
    GROUND_TRUTH_LAMBDA_ACCOUNTS,
    TASK_PRESETS,
    check_label_attribute_name,
    default_label_attribute_name,
    resolve,
)
from airflow_dl_provider.presets.labeling_ui import UI_TEMPLATES
from airflow_dl_provider.validation.requests import request_errors

REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
ROLE = "arn:aws:iam::123456789012:role/GroundTruth"


def _request(task_type: str, region: str, auto_labeling: bool) -> dict[str, Any]:
    task = resolve(task_type, region, auto_labeling=auto_labeling)
    ui = (
        {"HumanTaskUiArn": task.human_task_ui_arn}
        if task.human_task_ui_arn
        else {"UiTemplateS3Uri": "s3://b/inputs/template.liquid.html"}
    )
    request: dict[str, Any] = {
        "LabelingJobName": "preset-check",
        "LabelAttributeName": default_label_attribute_name(task_type),
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://b/inputs/dataset.manifest"}}},
        "OutputConfig": {"S3OutputPath": "s3://b/labels"},
        "RoleArn": ROLE,
        "LabelCategoryConfigS3Uri": "s3://b/inputs/label-categories.json",
        "HumanTaskConfig": {
            "WorkteamArn": task.public_workteam_arn,
            "UiConfig": ui,
            "PreHumanTaskLambdaArn": task.pre_lambda_arn,
            "TaskTitle": "t",
            "TaskDescription": "d",
            "NumberOfHumanWorkersPerDataObject": 3,
            "TaskTimeLimitInSeconds": 300,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": task.consolidation_lambda_arn
            },
            "PublicWorkforceTaskPrice": {
                "AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}
            },
        },
    }
    if task.algorithm_arn:
        request["LabelingJobAlgorithmsConfig"] = {"LabelingJobAlgorithmSpecificationArn": task.algorithm_arn}
    return request


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("task_type", list(TASK_PRESETS))
def test_every_preset_request_passes_the_service_model(task_type: str, region: str) -> None:
    auto = TASK_PRESETS[task_type].algorithm is not None
    assert request_errors("CreateLabelingJob", _request(task_type, region, auto)) == []


@pytest.mark.parametrize("region", REGIONS)
def test_arns_come_from_the_region_table(region: str) -> None:
    account = GROUND_TRUTH_LAMBDA_ACCOUNTS[region]
    task = resolve("image_classification", region, auto_labeling=True)
    assert task.pre_lambda_arn == f"arn:aws:lambda:{region}:{account}:function:PRE-ImageMultiClass"
    assert task.consolidation_lambda_arn == f"arn:aws:lambda:{region}:{account}:function:ACS-ImageMultiClass"
    assert task.algorithm_arn == (
        f"arn:aws:sagemaker:{region}:027400017018:labeling-job-algorithm-specification/image-classification"
    )
    assert task.human_task_ui_arn is None
    ner = resolve("named_entity_recognition", region)
    assert (
        ner.human_task_ui_arn
        == f"arn:aws:sagemaker:{region}:394669845002:human-task-ui/NamedEntityRecognition"
    )
    assert ner.public_workteam_arn == f"arn:aws:sagemaker:{region}:394669845002:workteam/public-crowd/default"


def test_every_type_has_a_ui_arn_or_a_template() -> None:
    for key, preset in TASK_PRESETS.items():
        assert (preset.human_task_ui is None) == (key in UI_TEMPLATES), key


def test_auto_labeling_only_for_the_documented_types() -> None:
    assert {k for k, p in TASK_PRESETS.items() if p.algorithm} == {
        "image_classification",
        "bounding_box",
        "semantic_segmentation",
        "text_classification",
    }
    with pytest.raises(PreflightError, match=r"^auto_labeling: Ground Truth has no automated labeling"):
        resolve("image_multilabel_classification", "us-east-1", auto_labeling=True)


def test_unknown_type_is_one_line() -> None:
    with pytest.raises(PreflightError) as caught:
        resolve("video_tracking", "us-east-1")
    assert str(caught.value).startswith(
        "task_type: 'video_tracking' is not a Ground Truth built-in task preset"
    )
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("region", ["sa-east-1", "af-south-1", "cn-north-1"])
def test_region_without_ground_truth_is_one_line(region: str) -> None:
    with pytest.raises(PreflightError) as caught:
        resolve("image_classification", region)
    message = str(caught.value)
    assert message.startswith(f"region: Ground Truth built-in task types are not available in {region!r}")
    assert "us-east-1" in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "task_type", "problem"),
    [
        ("label_1", "image_classification", "letters, digits"),
        ("label-metadata", "image_classification", "-metadata"),
        ("label-ref", "image_classification", "must not end in '-ref'"),
        ("mask", "semantic_segmentation", "must end in '-ref'"),
    ],
)
def test_label_attribute_name_rules(name: str, task_type: str, problem: str) -> None:
    with pytest.raises(PreflightError, match=problem):
        check_label_attribute_name(name, task_type)
    check_label_attribute_name(default_label_attribute_name(task_type), task_type)
