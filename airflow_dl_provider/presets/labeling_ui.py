"""Worker task templates for the built-in types that take ``UiTemplateS3Uri`` instead of a task UI ARN.

Each template is the one AWS gives on the task type's "create a labeling job (API)" page, element for
element: the crowd element, its ``name`` (the key the worker's answer is filed under, which the built-in
``ACS-<Type>`` Lambda consolidates), the choices attribute (classifiers call them ``categories``, the
box and segmentation tools ``labels``), where the object goes (images: the ``src`` attribute through
``grant_read_access``; text: inside ``<classification-target>``, as ``crowd-classifier`` has no text
attribute) and both instruction regions. The built-in ``PRE-<Type>`` Lambda fills in only
``task.input.taskObject`` and ``task.input.labels``, so the header and the instructions are written
into the template here, HTML-escaped and with Liquid's braces neutralized. Pass ``ui_template`` to the
operator to use your own.

Sources: https://docs.aws.amazon.com/sagemaker/latest/dg/sms-ui-template-reference.html (attributes and
regions per element) and the task type pages listed in :data:`CROWD_ELEMENTS`; the same elements as
GitHub aws-samples/amazon-sagemaker-ground-truth-task-uis.

Pure module: no Airflow, no boto3.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

CROWD_SCRIPT = "https://assets.crowd.aws/crowd-html-elements.js"
_DG = "https://docs.aws.amazon.com/sagemaker/latest/dg/"


@dataclass(frozen=True)
class CrowdElement:
    """The crowd HTML element one built-in task type's worker template is made of.

    :param tag: the element.
    :param name: its ``name`` in AWS's template for the type: the key of the worker's answer.
    :param choices: the attribute holding the label names (``categories`` or ``labels``).
    :param target: ``src`` (an image, an attribute) or ``classification-target`` (text, a region).
    :param instructions: default short instructions, shown when the operator is given none.
    :param source: the AWS page with the type's template.
    """

    tag: str
    name: str
    choices: str
    target: str
    instructions: str
    source: str


CROWD_ELEMENTS: dict[str, CrowdElement] = {
    "image_classification": CrowdElement(
        "crowd-image-classifier",
        "crowd-image-classifier",
        "categories",
        "src",
        "Look at the whole image, then choose the one label that fits it best.",
        _DG + "sms-image-classification.html",
    ),
    "image_multilabel_classification": CrowdElement(
        "crowd-image-classifier-multi-select",
        "crowd-image-classifier-multi-select",
        "categories",
        "src",
        "Look at the whole image, then choose every label that applies to it.",
        _DG + "sms-image-classification-multilabel.html",
    ),
    "bounding_box": CrowdElement(
        "crowd-bounding-box",
        # Not the tag: AWS's template names it boundingBox, and the output manifest carries that key.
        "boundingBox",
        "labels",
        "src",
        "Draw a tight box around each object of a listed label and give it that label.",
        _DG + "sms-bounding-box.html",
    ),
    "semantic_segmentation": CrowdElement(
        "crowd-semantic-segmentation",
        "crowd-semantic-segmentation",
        "labels",
        "src",
        "Paint every pixel of each object with the label of the object.",
        _DG + "sms-semantic-segmentation.html",
    ),
    "text_classification": CrowdElement(
        "crowd-classifier",
        "crowd-classifier",
        "categories",
        "classification-target",
        "Read the whole text, then choose the one label that fits it best.",
        _DG + "sms-text-classification.html",
    ),
    "text_multilabel_classification": CrowdElement(
        "crowd-classifier-multi-select",
        "crowd-classifier-multi-select",
        "categories",
        "classification-target",
        "Read the whole text, then choose every label that applies to it.",
        _DG + "sms-text-classification-multilabel.html",
    ),
}


def _text(value: str) -> str:
    # The template is Liquid before it is HTML: "{{" in a header would be evaluated, so braces go in as
    # character references, which the browser shows as braces.
    return html.escape(value, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def ui_template(task_type: str, *, header: str, instructions: str | None = None) -> str:
    """The built-in worker template of ``task_type``.

    :param header: the question above the object (the element's required ``header``).
    :param instructions: plain text for both instruction regions; a default per type when None.
    :raises KeyError: for a type that has a task UI ARN instead (named entity recognition).
    """
    element = CROWD_ELEMENTS[task_type]
    guidance = _text(instructions or element.instructions)
    attributes = [f'name="{element.name}"']
    if element.target == "src":
        attributes.append('src="{{ task.input.taskObject | grant_read_access }}"')
    attributes += [
        f'header="{_text(header)}"',
        f'{element.choices}="{{{{ task.input.labels | to_json | escape }}}}"',
    ]
    body = ""
    if element.target == "classification-target":
        # pre-wrap keeps the text's own line breaks, as AWS's text templates do.
        body += (
            '    <classification-target style="white-space: pre-wrap">\n'
            "      {{ task.input.taskObject }}\n"
            "    </classification-target>\n"
        )
    body += (
        f'    <full-instructions header="Instructions">\n      <p>{guidance}</p>\n    </full-instructions>\n'
        f"    <short-instructions>\n      <p>{guidance}</p>\n    </short-instructions>\n"
    )
    opening = "\n    ".join(attributes)
    return (
        f'<script src="{CROWD_SCRIPT}"></script>\n<crowd-form>\n'
        f"  <{element.tag}\n    {opening}\n  >\n{body}  </{element.tag}>\n</crowd-form>\n"
    )
