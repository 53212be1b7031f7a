"""What both labeling services take: the data set, the labels, the output, the people per object.

Ground Truth (:mod:`~airflow_dl_provider.operators.labeling`) and Label Studio
(:mod:`~airflow_dl_provider.operators.label_studio`) label the same inputs into the same Ground Truth
output manifest, so the arguments they share are checked, kept and read here once: a DAG moves from
one service to the other by changing the operator's class and the service's own arguments only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.manifests.input import (
    build_manifest_from_prefix,
    build_manifest_from_text_lines,
    duplicate_labels,
)
from airflow_dl_provider.operators.base import WaitingOperator
from airflow_dl_provider.presets.labeling import check_label_attribute_name, default_label_attribute_name
from airflow_dl_provider.specs.fields import is_templated
from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_dl_provider.jobs.plan import ObjectReader

INPUT_ARGUMENTS = ("input_manifest_uri", "input_prefix", "input_text_uri")
# The shared arguments Airflow renders; each service adds its own.
TEMPLATE_FIELDS = (
    "labels",
    "output_path",
    "input_manifest_uri",
    "input_prefix",
    "input_text_uri",
    "label_attribute_name",
    "task_title",
    "instructions",
    "tags",
)


def check_labels(labels: Sequence[str] | str) -> None:
    """A non-empty list of distinct names (their order is the class index); one line otherwise."""
    if isinstance(labels, str) or not labels:
        raise ValueError("labels: give a non-empty list of label names")
    duplicates = duplicate_labels([str(label) for label in labels])
    if duplicates:
        raise ValueError(
            f"labels: {', '.join(map(repr, duplicates))} appear more than once; list each label once"
        )


class LabelingOperator(WaitingOperator):
    """The base of both labeling operators: the arguments they share, checked at construction.

    Each service's operator documents these arguments as it uses them: ``task_type`` (the types it
    runs name the manifest key it labels, :meth:`data_key`), ``labels``, ``output_path``, exactly one of
    ``input_manifest_uri`` / ``input_prefix`` / ``input_text_uri`` (an existing manifest, the images
    under a prefix, the lines of a text file), ``label_attribute_name``, ``workers_per_object`` (1-9),
    ``max_human_labeled_objects`` (>= 1), ``auto_labeling``, ``task_title``, ``instructions`` and ``tags``.
    """

    def __init__(
        self,
        *,
        task_type: str,
        labels: Sequence[str] | str,
        output_path: str,
        input_manifest_uri: str | None = None,
        input_prefix: str | None = None,
        input_text_uri: str | None = None,
        label_attribute_name: str | None = None,
        workers_per_object: int = 1,
        max_human_labeled_objects: int | None = None,
        auto_labeling: bool = False,
        task_title: str | None = None,
        instructions: str | None = None,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = self.task_id
        try:
            data_key = self.data_key(task_type)
            attribute = label_attribute_name or default_label_attribute_name(task_type)
            if not is_templated(attribute):
                check_label_attribute_name(attribute, task_type)
            if not is_templated(labels):
                check_labels(labels)
        except ValueError as err:
            raise ValueError(f"{task}: {err}") from None
        inputs = (input_manifest_uri, input_prefix, input_text_uri)
        given = [name for name, value in zip(INPUT_ARGUMENTS, inputs, strict=True) if value]
        if len(given) != 1:
            raise ValueError(
                f"{task}: give exactly one of {', '.join(INPUT_ARGUMENTS)}; got {given or 'none'}"
            )
        if input_text_uri and data_key != "source":
            raise ValueError(f"{task}: input_text_uri: {task_type} labels S3 objects; use input_prefix")
        if input_prefix and data_key != "source-ref":
            raise ValueError(f"{task}: input_prefix: {task_type} labels text; use input_text_uri")
        if not 1 <= workers_per_object <= 9:
            raise ValueError(f"{task}: workers_per_object must be 1-9, got {workers_per_object}")
        # Ground Truth's MaxHumanLabeledObjectCount and Label Studio's rounds both need at least one.
        if max_human_labeled_objects is not None and max_human_labeled_objects < 1:
            raise ValueError(
                f"{task}: max_human_labeled_objects must be >= 1, got {max_human_labeled_objects}"
            )
        # BaseOperator.task_type is the class name; the labeling type needs a name of its own.
        self.labeling_task_type = task_type
        self.labels = labels if isinstance(labels, str) else list(labels)
        self.output_path = output_path
        self.input_manifest_uri = input_manifest_uri
        self.input_prefix = input_prefix
        self.input_text_uri = input_text_uri
        self.label_attribute_name = attribute
        self.workers_per_object = workers_per_object
        self.max_human_labeled_objects = max_human_labeled_objects
        self.auto_labeling = auto_labeling
        self.task_title = task_title
        self.instructions = instructions
        self.tags = dict(tags or {})

    @classmethod
    def data_key(cls, task_type: str) -> str:
        """The manifest key ``task_type`` labels: ``source-ref`` (S3 objects) or ``source`` (text)."""
        raise NotImplementedError

    def check_rendered_labeling_input(self) -> None:
        """The checks a template skipped at construction, on the rendered values; before anything starts.

        A retry renders the same values, so the error is not retried (:class:`PreflightError`).
        """
        try:
            check_labels(self.labels)
            check_label_attribute_name(self.label_attribute_name, self.labeling_task_type)
        except ValueError as err:
            raise PreflightError(f"{self.task_id}: {err}") from None

    @property
    def input_argument(self) -> str:
        """The one input argument given: ``input_manifest_uri``, ``input_prefix`` or ``input_text_uri``."""
        return next(name for name in INPUT_ARGUMENTS if getattr(self, name))

    def manifest_source(self) -> ManifestSource | None:
        """How the input manifest is built from ``input_prefix`` or ``input_text_uri`` (the URI is checked
        now, nothing is read); None for an existing manifest (``input_manifest_uri``)."""
        if self.input_prefix:
            prefix = str(self.input_prefix)
            bucket, _ = split_s3_uri(prefix, "input_prefix")
            return ManifestSource(
                "input_prefix",
                f"manifest of the objects under {prefix}",
                lambda reader: build_manifest_from_prefix(reader.keys(prefix), bucket),
            )
        if self.input_text_uri:
            text_uri = str(self.input_text_uri)
            split_s3_uri(text_uri, "input_text_uri")
            return ManifestSource(
                "input_text_uri",
                f"manifest of the lines of {text_uri}",
                lambda reader: build_manifest_from_text_lines(reader.read(text_uri).decode()),
            )
        return None


class ManifestSource(NamedTuple):
    """An input manifest built from S3 at pre-flight.

    :param argument: the operator argument it comes from, for messages.
    :param what: for messages and logs, e.g. ``manifest of the objects under s3://b/pets/``.
    :param build: its lines, from the reads it makes through the reader it is handed.
    """

    argument: str
    what: str
    build: Callable[[ObjectReader], list[str]]
