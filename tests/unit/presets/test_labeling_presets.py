"""Every built-in task preset makes a CreateLabelingJob request the service model accepts, per region."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.labeling import (
    GROUND_TRUTH_LAMBDA_ACCOUNTS,
    TASK_PRESETS,
    check_label_attribute_name,
    check_workteam,
    default_label_attribute_name,
    resolve,
)
from airflow_dl_provider.presets.labeling_ui import CROWD_ELEMENTS, ui_template
from airflow_dl_provider.validation.requests import request_errors

REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
ROLE = "arn:aws:iam::123456789012:role/GroundTruth"
WORKTEAM = "arn:aws:sagemaker:{region}:123456789012:workteam/private-crowd/labelers"


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
            "WorkteamArn": WORKTEAM.format(region=region),
            "UiConfig": ui,
            "PreHumanTaskLambdaArn": task.pre_lambda_arn,
            "TaskTitle": "t",
            "TaskDescription": "d",
            "NumberOfHumanWorkersPerDataObject": 3,
            "TaskTimeLimitInSeconds": 300,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": task.consolidation_lambda_arn
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


def test_every_type_has_a_ui_arn_or_a_template() -> None:
    for key, preset in TASK_PRESETS.items():
        assert (preset.human_task_ui is None) == (key in CROWD_ELEMENTS), key


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


# -- the public workforce ----------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_public_workforce_is_refused_in_every_region(region: str) -> None:
    public = f"arn:aws:sagemaker:{region}:394669845002:workteam/public-crowd/default"
    with pytest.raises(PreflightError) as caught:
        check_workteam(public)
    message = str(caught.value)
    assert message.startswith(f"workteam_arn: {public} is the public workforce; Amazon Mechanical Turk")
    assert "2026-09-30" in message and "\n" not in message


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/labelers",
        "arn:aws:sagemaker:us-east-1:123456789012:workteam/vendor-crowd/acme",
        # A private team of this account named like the public one is still private.
        "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/public-crowd",
    ],
)
def test_private_and_vendor_work_teams_pass(arn: str) -> None:
    check_workteam(arn)


# -- worker templates, parsed and compared with AWS's elements ---------------------------------------------


class _Tree(HTMLParser):
    """Every start tag with its attributes and its parent, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], str | None]] = []
        self.text: dict[str, str] = {}
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, self._stack[-1] if self._stack else None))
        self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self._stack and self._stack[-1] == tag, f"</{tag}> closes <{self._stack[-1:]}>"
        self._stack.pop()

    def handle_data(self, data: str) -> None:
        # Text counts for every open element, so a region's text includes its paragraphs'.
        for tag in set(self._stack) if data.strip() else ():
            self.text[tag] = self.text.get(tag, "") + data.strip()


def _parse(template: str) -> _Tree:
    tree = _Tree()
    tree.feed(template)
    tree.close()
    assert tree._stack == [], "unclosed elements"
    return tree


# What AWS's template on each task type's API page uses (name, choices attribute, where the object goes).
AWS_TEMPLATES = {
    "image_classification": ("crowd-image-classifier", "crowd-image-classifier", "categories", "src"),
    "image_multilabel_classification": (
        "crowd-image-classifier-multi-select",
        "crowd-image-classifier-multi-select",
        "categories",
        "src",
    ),
    "bounding_box": ("crowd-bounding-box", "boundingBox", "labels", "src"),
    "semantic_segmentation": (
        "crowd-semantic-segmentation",
        "crowd-semantic-segmentation",
        "labels",
        "src",
    ),
    "text_classification": ("crowd-classifier", "crowd-classifier", "categories", "classification-target"),
    "text_multilabel_classification": (
        "crowd-classifier-multi-select",
        "crowd-classifier-multi-select",
        "categories",
        "classification-target",
    ),
}


def test_every_template_type_is_checked() -> None:
    assert (
        set(AWS_TEMPLATES)
        == set(CROWD_ELEMENTS)
        == {k for k, p in TASK_PRESETS.items() if p.human_task_ui is None}
    )


@pytest.mark.parametrize("task_type", sorted(AWS_TEMPLATES))
def test_template_matches_aws_element_for_element(task_type: str) -> None:
    tag, name, choices, target = AWS_TEMPLATES[task_type]
    tree = _parse(ui_template(task_type, header="Which one is it?"))
    tags = [t for t, _a, _p in tree.elements]
    assert tags[0] == "script" and tree.elements[0][1] == {
        "src": "https://assets.crowd.aws/crowd-html-elements.js"
    }
    assert tags[1] == "crowd-form"
    (element,) = [(a, p) for t, a, p in tree.elements if t == tag]
    attributes, parent = element
    assert parent == "crowd-form"
    assert attributes["name"] == name
    assert attributes["header"] == "Which one is it?"
    assert attributes[choices] == "{{ task.input.labels | to_json | escape }}"
    expected = {"name", "header", choices} | ({"src"} if target == "src" else set())
    assert set(attributes) == expected, "attributes the element does not take"
    if target == "src":
        assert attributes["src"] == "{{ task.input.taskObject | grant_read_access }}"
    else:
        # crowd-classifier has no text attribute: the object is the classification-target region.
        assert "text" not in attributes
        assert tree.text["classification-target"] == "{{ task.input.taskObject }}"
    regions = [(t, p) for t, _a, p in tree.elements if t not in ("script", "crowd-form", tag, "p")]
    expected_regions = ["full-instructions", "short-instructions"]
    if target == "classification-target":
        expected_regions.insert(0, "classification-target")
    assert regions == [(r, tag) for r in expected_regions]
    full = next(a for t, a, _p in tree.elements if t == "full-instructions")
    assert full.get("header")


@pytest.mark.parametrize("task_type", sorted(AWS_TEMPLATES))
def test_header_and_instructions_are_text_not_markup_or_liquid(task_type: str) -> None:
    header = 'Is it a "cat" <b>{{ task.input.secret }}</b>?'
    instructions = "Pick <one> & only {% raw %}one{% endraw %}"
    template = ui_template(task_type, header=header, instructions=instructions)
    # Liquid sees no tags and no output markup but the template's own two: the object and the labels.
    assert template.count("{{") == template.count("}}") == 2
    assert "{%" not in template
    tree = _parse(template)
    (attributes,) = [a for t, a, _p in tree.elements if t == AWS_TEMPLATES[task_type][0]]
    assert attributes["header"] == header  # what the worker reads, once the browser decodes it
    assert "b" not in [t for t, _a, _p in tree.elements]
    assert tree.text["short-instructions"] == instructions


def test_the_pre_lambda_fills_only_the_object_and_the_labels() -> None:
    """Built-in PRE- Lambdas give taskObject and labels: a template reading anything else shows blanks."""
    import re

    for task_type in CROWD_ELEMENTS:
        used = set(re.findall(r"task\.input\.(\w+)", ui_template(task_type, header="h")))
        assert used == {"taskObject", "labels"}, task_type
