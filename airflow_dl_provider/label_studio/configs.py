"""Label Studio label configs for the classification task types, and their task data and results.

A project's ``label_config`` is XML: an object tag (``<Image>`` or ``<Text>``, whose ``value`` names
the task data key) and a control tag (``<Choices>``, ``choice="single"`` or ``"multiple"``) with one
``<Choice>`` per label, in class-index order (https://labelstud.io/tags/choices,
https://labelstud.io/templates/image_classification, .../sentiment_analysis). An annotation's
``result`` holds ``{"from_name", "to_name", "type": "choices", "value": {"choices": [...]}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from airflow_dl_provider.specs.fields import keyed, lookup

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

CONTROL = "label"


@dataclass(frozen=True)
class LabelStudioTask:
    """How one Ground Truth task type looks in Label Studio.

    :param key: the ``task_type`` value (as for Ground Truth).
    :param object_tag: ``Image`` or ``Text``.
    :param data_key: the task data key the object tag reads (``$image``, ``$text``).
    :param manifest_key: the manifest key of the object: ``source-ref`` (S3) or ``source`` (text).
    :param multi_label: ``choice="multiple"``.
    """

    key: str
    object_tag: str
    data_key: str
    manifest_key: str
    multi_label: bool = False


TASKS: dict[str, LabelStudioTask] = keyed(
    (
        LabelStudioTask("image_classification", "Image", "image", "source-ref"),
        LabelStudioTask("image_multilabel_classification", "Image", "image", "source-ref", multi_label=True),
        LabelStudioTask("text_classification", "Text", "text", "source"),
        LabelStudioTask("text_multilabel_classification", "Text", "text", "source", multi_label=True),
    )
)


def task_for(task_type: str) -> LabelStudioTask:
    """The Label Studio shape of ``task_type``; a one-line error for a type it does not run."""
    return lookup(TASKS, task_type, "task_type", "labeled through Label Studio here")


def label_config(task_type: str, labels: Sequence[str], *, header: str | None = None) -> str:
    """The project's ``label_config`` XML: the object, then one ``<Choice>`` per label."""
    task = task_for(task_type)
    choice = "multiple" if task.multi_label else "single"
    lines = ["<View>"]
    if header:
        lines.append(f"  <Header value={quoteattr(header)}/>")
    lines.append(f'  <{task.object_tag} name="{task.data_key}" value="${task.data_key}"/>')
    lines.append(
        f'  <Choices name="{CONTROL}" toName="{task.data_key}" choice="{choice}" showInline="true" required="true">'
    )
    lines += [f"    <Choice value={quoteattr(str(label))}/>" for label in labels]
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines) + "\n"


# The object's manifest key, kept in the task's meta: Label Studio rewrites s3:// URIs in ``data`` into
# its own presigned-redirect URLs (/tasks/<id>/resolve/?fileuri=...) in task listings.
OBJECT_META = "airflow-dl:object"


def task_data(task_type: str, line: Mapping[str, Any]) -> dict[str, Any]:
    """The task ``data`` for one input manifest line: its S3 object or text under the config's key."""
    task = task_for(task_type)
    return {task.data_key: line[task.manifest_key]}


def object_key(task_type: str, task: Mapping[str, Any]) -> str:
    """The manifest key (``source-ref`` URI or ``source`` text) a task stands for: its meta, else its data."""
    meta = task.get("meta") or {}
    if meta.get(OBJECT_META):
        return str(meta[OBJECT_META])
    return str((task.get("data") or {}).get(task_for(task_type).data_key, ""))


def choices_result(task_type: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """An annotation or prediction ``result`` choosing ``names``."""
    task = task_for(task_type)
    return [
        {
            "from_name": CONTROL,
            "to_name": task.data_key,
            "type": "choices",
            "value": {"choices": [str(n) for n in names]},
        }
    ]


def chosen(result: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The label names an annotation's ``result`` chose with our control; None when it chose none."""
    for item in result:
        if item.get("type") == "choices" and item.get("from_name") == CONTROL:
            names = (item.get("value") or {}).get("choices") or []
            return [str(n) for n in names] or None
    return None
