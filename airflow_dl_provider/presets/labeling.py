"""Ground Truth's built-in task types, the regions that host them, and the ARNs each needs.

Sources (checked against the SageMaker API reference as bundled in botocore's service model, the
``documentation`` of these members, and the Ground Truth developer guide):

* ``HumanTaskConfig.PreHumanTaskLambdaArn`` and ``AnnotationConsolidationConfig.
  AnnotationConsolidationLambdaArn``: ``arn:aws:lambda:<region>:<account>:function:PRE-<Type>`` /
  ``ACS-<Type>``, one Lambda account per region; the same 12 regions and accounts for every type.
* ``UiConfig.HumanTaskUiArn``: ``arn:aws:sagemaker:<region>:394669845002:human-task-ui/<Type>``,
  documented for named entity recognition (and 3D point cloud / video frame jobs, not presets here).
  Every other image and text type takes a Liquid template in ``UiTemplateS3Uri`` (see
  :mod:`airflow_dl_provider.presets.labeling_ui`).
* ``LabelingJobAlgorithmsConfig.LabelingJobAlgorithmSpecificationArn``:
  ``arn:aws:sagemaker:<region>:027400017018:labeling-job-algorithm-specification/<algorithm>`` for
  image classification, text classification, object detection and semantic segmentation only.
* "Automate data labeling" (sms-automated-labeling): automated labeling runs for image
  classification (single label), semantic segmentation, bounding box and text classification, and
  "the minimum number of objects allowed for automated data labeling is 1,250".
* "Use the Amazon Mechanical Turk workforce": the public workforce is
  ``arn:aws:sagemaker:<region>:394669845002:workteam/public-crowd/default``. Amazon Mechanical Turk
  closed on 2026-09-30, and Ground Truth is no longer open to new AWS customers (existing ones keep
  it; "Create a Labeling Job (API)", sms-create-labeling-job-api): :func:`check_workteam` refuses the
  public workforce; private and vendor work teams are unchanged.
* "Labeling job output data" (sms-data-output): the ``type`` written in each label's metadata, and
  the rule that semantic segmentation attribute names end in ``-ref`` and no other type's may.

Pure module: no Airflow, no boto3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.specs.fields import keyed, lookup

# Region -> the account that owns Ground Truth's PRE-/ACS- Lambda functions there.
GROUND_TRUTH_LAMBDA_ACCOUNTS: dict[str, str] = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
HUMAN_TASK_UI_ACCOUNT = "394669845002"
PUBLIC_WORKFORCE_ACCOUNT = "394669845002"
_PUBLIC_WORKTEAM = re.compile(
    rf"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:{PUBLIC_WORKFORCE_ACCOUNT}:workteam/public-crowd/default"
)
PUBLIC_WORKFORCE_CLOSED = (
    "Amazon Mechanical Turk (the public workforce) closed on 2026-09-30 and Ground Truth is no longer "
    "open to new AWS customers; give workteam_arn a private or vendor work team, or label with "
    "Label Studio (labeling service: label_studio)"
)
AUTO_LABELING_ACCOUNT = "027400017018"
# The service refuses automated data labeling on smaller data sets (it recommends 5,000 or more).
AUTO_LABELING_MIN_OBJECTS = 1250
LABEL_CATEGORY_DOCUMENT_VERSION = "2018-11-28"
# Named entity recognition's worker UI reads its instructions from the label category config, where
# CreateLabelingJob's LabelCategoryConfigS3Uri says they are required; the template types carry theirs.
DEFAULT_ENTITY_INSTRUCTIONS = "Highlight each word or phrase that names an entity, then choose its label."

_ATTRIBUTE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}")


@dataclass(frozen=True)
class TaskPreset:
    """One built-in task type.

    :param key: the operator's ``task_type`` value.
    :param lambda_type: the ``<Type>`` of ``PRE-<Type>`` and ``ACS-<Type>``.
    :param output_type: the ``type`` Ground Truth writes into each label's metadata.
    :param data_key: ``source-ref`` (an S3 object per line) or ``source`` (the text itself).
    :param human_task_ui: the ``<Type>`` of a ``HumanTaskUiArn``; None when a template is uploaded.
    :param algorithm: the automated labeling algorithm; None when the type has none.
    :param multi_label: a worker may choose several labels per object.
    """

    key: str
    lambda_type: str
    output_type: str
    data_key: str
    human_task_ui: str | None = None
    algorithm: str | None = None
    multi_label: bool = False

    @property
    def needs_ref_attribute(self) -> bool:
        """Its label is an S3 object (a mask), so the label attribute name must end in ``-ref``."""
        return self.key == "semantic_segmentation"


TASK_PRESETS: dict[str, TaskPreset] = keyed(
    (
        TaskPreset(
            "image_classification",
            "ImageMultiClass",
            "groundtruth/image-classification",
            "source-ref",
            algorithm="image-classification",
        ),
        TaskPreset(
            "image_multilabel_classification",
            "ImageMultiClassMultiLabel",
            "groundtruth/image-classification-multilabel",
            "source-ref",
            multi_label=True,
        ),
        TaskPreset(
            "bounding_box",
            "BoundingBox",
            "groundtruth/object-detection",
            "source-ref",
            algorithm="object-detection",
        ),
        TaskPreset(
            "semantic_segmentation",
            "SemanticSegmentation",
            "groundtruth/semantic-segmentation",
            "source-ref",
            algorithm="semantic-segmentation",
        ),
        TaskPreset(
            "text_classification",
            "TextMultiClass",
            "groundtruth/text-classification",
            "source",
            algorithm="text-classification",
        ),
        TaskPreset(
            "text_multilabel_classification",
            "TextMultiClassMultiLabel",
            "groundtruth/text-classification-multilabel",
            "source",
            multi_label=True,
        ),
        TaskPreset(
            "named_entity_recognition",
            "NamedEntityRecognition",
            "groundtruth/named-entity-recognition",
            "source",
            human_task_ui="NamedEntityRecognition",
        ),
    )
)
PRESETS_BY_LAMBDA_TYPE = {p.lambda_type: p for p in TASK_PRESETS.values()}


@dataclass(frozen=True)
class ResolvedTask:
    """The ARNs of one preset in one region; ``human_task_ui_arn`` or a template, never both."""

    preset: TaskPreset
    region: str
    pre_lambda_arn: str
    consolidation_lambda_arn: str
    human_task_ui_arn: str | None
    algorithm_arn: str | None


def task_preset(task_type: str) -> TaskPreset:
    """The preset named ``task_type``; an unknown name is a one-line error listing the known ones."""
    return lookup(
        TASK_PRESETS, task_type, "task_type", "a Ground Truth built-in task preset", error=PreflightError
    )


def check_region(region: str) -> str:
    """The Lambda account of ``region``, or a one-line error naming the regions Ground Truth runs in."""
    account = GROUND_TRUTH_LAMBDA_ACCOUNTS.get(region)
    if account is None:
        raise PreflightError(
            f"region: Ground Truth built-in task types are not available in {region!r}; run the labeling "
            f"task in one of {', '.join(GROUND_TRUTH_LAMBDA_ACCOUNTS)} (set region_name)"
        )
    return account


def resolve(
    task_type: str, region: str, *, partition: str = "aws", auto_labeling: bool = False
) -> ResolvedTask:
    """Every ARN the preset needs in ``region``.

    :raises PreflightError: unknown task type, region without Ground Truth, or automated labeling
        for a type that has no algorithm.
    """
    preset = task_preset(task_type)
    account = check_region(region)
    if auto_labeling and preset.algorithm is None:
        raise PreflightError(
            f"auto_labeling: Ground Truth has no automated labeling for {task_type!r}; it runs for "
            f"{', '.join(k for k, p in TASK_PRESETS.items() if p.algorithm)}"
        )
    lambda_prefix = f"arn:{partition}:lambda:{region}:{account}:function"
    sagemaker_prefix = f"arn:{partition}:sagemaker:{region}"
    return ResolvedTask(
        preset=preset,
        region=region,
        pre_lambda_arn=f"{lambda_prefix}:PRE-{preset.lambda_type}",
        consolidation_lambda_arn=f"{lambda_prefix}:ACS-{preset.lambda_type}",
        human_task_ui_arn=(
            f"{sagemaker_prefix}:{HUMAN_TASK_UI_ACCOUNT}:human-task-ui/{preset.human_task_ui}"
            if preset.human_task_ui
            else None
        ),
        algorithm_arn=(
            f"{sagemaker_prefix}:{AUTO_LABELING_ACCOUNT}:labeling-job-algorithm-specification/{preset.algorithm}"
            if auto_labeling and preset.algorithm
            else None
        ),
    )


def is_public_workteam(workteam_arn: str) -> bool:
    return bool(_PUBLIC_WORKTEAM.fullmatch(workteam_arn.strip()))


def check_workteam(workteam_arn: str, field: str = "workteam_arn") -> None:
    """A private or vendor work team; the public workforce is a one-line error saying why and what instead."""
    if is_public_workteam(workteam_arn):
        raise PreflightError(f"{field}: {workteam_arn} is the public workforce; {PUBLIC_WORKFORCE_CLOSED}")


def check_label_attribute_name(name: str, task_type: str) -> None:
    """The service's pattern plus Ground Truth's ``-metadata`` and ``-ref`` rules."""
    preset = task_preset(task_type)
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise PreflightError(
            f"label_attribute_name: {name!r} must be 1-127 letters, digits and inner hyphens"
        )
    if name.endswith("-metadata"):
        raise PreflightError(
            f"label_attribute_name: {name!r} must not end in '-metadata' (Ground Truth adds it)"
        )
    if preset.needs_ref_attribute and not name.endswith("-ref"):
        raise PreflightError(f"label_attribute_name: {name!r} must end in '-ref' for {task_type}")
    if not preset.needs_ref_attribute and name.endswith("-ref"):
        raise PreflightError(f"label_attribute_name: {name!r} must not end in '-ref' for {task_type}")


def default_label_attribute_name(task_type: str) -> str:
    return "label-ref" if task_preset(task_type).needs_ref_attribute else "label"
