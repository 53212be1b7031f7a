"""Worker task templates for the built-in types that take ``UiTemplateS3Uri`` instead of a task UI ARN.

Each is a Liquid template built from Ground Truth's crowd HTML elements, fed by the type's
``PRE-<Type>`` Lambda, which puts the object in ``task.input.taskObject`` and the label category
config's labels in ``task.input.labels`` (developer guide: "Crowd HTML Elements Reference" and
"Create a custom worker task template"). Pass ``ui_template`` to the operator to use your own.
"""

from __future__ import annotations

_HEAD = '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>\n<crowd-form>\n'
_TAIL = "</crowd-form>\n"
_INSTRUCTIONS = (
    '    <full-instructions header="Instructions">{{ task.input.fullInstructions }}</full-instructions>\n'
    "    <short-instructions>{{ task.input.shortInstructions }}</short-instructions>\n"
)


def _element(tag: str, source: str, *, choices: str = "categories") -> str:
    # Classifiers call the choices "categories"; the box and segmentation tools call them "labels".
    return (
        _HEAD
        + f'  <{tag}\n    name="{tag}"\n    {source}\n'
        + '    header="{{ task.input.header }}"\n'
        + f'    {choices}="{{{{ task.input.labels | to_json | escape }}}}">\n'
        + _INSTRUCTIONS
        + f"  </{tag}>\n"
        + _TAIL
    )


_IMAGE = 'src="{{ task.input.taskObject | grant_read_access }}"'
_TEXT = 'text="{{ task.input.taskObject | escape }}"'

UI_TEMPLATES: dict[str, str] = {
    "image_classification": _element("crowd-image-classifier", _IMAGE),
    "image_multilabel_classification": _element("crowd-image-classifier-multi-select", _IMAGE),
    "bounding_box": _element("crowd-bounding-box", _IMAGE, choices="labels"),
    "semantic_segmentation": _element("crowd-semantic-segmentation", _IMAGE, choices="labels"),
    "text_classification": _element("crowd-classifier", _TEXT),
    "text_multilabel_classification": _element("crowd-classifier-multi-select", _TEXT),
}


def ui_template(task_type: str) -> str:
    """The built-in template of ``task_type``; KeyError for a type that has a task UI ARN instead."""
    return UI_TEMPLATES[task_type]
