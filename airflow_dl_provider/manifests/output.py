"""Read any Ground Truth output manifest into typed records.

Each output line is the input line plus ``<attribute>`` (the label) and ``<attribute>-metadata``
(developer guide: "Labeling job output data"):

* classification: the class index, with ``class-name`` and ``confidence``;
* multi-label classification: a list of class indexes, with ``class-map`` and ``confidence-map``;
* bounding box: ``{"image_size": [...], "annotations": [{"class_id", "left", "top", "width",
  "height"}]}``, with ``class-map`` and one ``objects[i].confidence`` per box;

and, for every type, ``type``, ``job-name``, ``human-annotated`` and ``creation-date``. A line with
no label (not labeled yet, or unlabeled when the job stopped) reads as :class:`Unlabeled`; other
types (segmentation masks, entities) as :class:`OtherLabel` with the raw value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

CLASSIFICATION_TYPES = ("groundtruth/image-classification", "groundtruth/text-classification")
MULTILABEL_TYPES = (
    "groundtruth/image-classification-multilabel",
    "groundtruth/text-classification-multilabel",
)
BOUNDING_BOX_TYPE = "groundtruth/object-detection"


class ManifestFormatError(ValueError):
    """A line is not a Ground Truth output manifest line; the message names the line number."""


class _Keyed:
    """A record's key: its S3 object, or its text for text jobs (what a truth map is keyed by)."""

    source_ref: str | None

    @property
    def key(self) -> str:
        if self.source_ref is not None:
            return self.source_ref
        return str(getattr(self, "source", None))


@dataclass(frozen=True, kw_only=True)
class LabelMetadata(_Keyed):
    """What every label's metadata carries (``human-annotated``, ``job-name``, ``creation-date``, ``type``).

    Keyword-only, so that each label type adds its own fields (and defaults) after these.
    """

    human_annotated: bool
    job_name: str
    creation_date: str
    type: str


@dataclass(frozen=True, kw_only=True)
class ClassificationLabel(LabelMetadata):
    """One object's single label. ``source_ref`` is the S3 object, ``source`` the text (text jobs)."""

    source_ref: str | None
    label: int
    class_name: str
    confidence: float
    source: str | None = None


@dataclass(frozen=True, kw_only=True)
class MultiLabel(LabelMetadata):
    """One object's labels: class indexes, their names and a confidence per name."""

    source_ref: str | None
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    confidences: Mapping[str, float]
    source: str | None = None


@dataclass(frozen=True)
class BoundingBox:
    class_id: int
    class_name: str
    left: int
    top: int
    width: int
    height: int
    confidence: float | None


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int
    depth: int | None


@dataclass(frozen=True, kw_only=True)
class BoundingBoxes(LabelMetadata):
    """One image's boxes and its size."""

    source_ref: str | None
    annotations: tuple[BoundingBox, ...]
    image_size: ImageSize | None


@dataclass(frozen=True)
class OtherLabel(_Keyed):
    """A label of a type this reader does not model (segmentation mask, entities): the raw value."""

    source_ref: str | None
    value: Any
    metadata: Mapping[str, Any]
    type: str
    source: str | None = None


@dataclass(frozen=True)
class Unlabeled(_Keyed):
    """An object the job did not label (the line is the input line, unchanged)."""

    source_ref: str | None
    source: str | None = None


Record = ClassificationLabel | MultiLabel | BoundingBoxes | OtherLabel | Unlabeled


def label_attribute(line: Mapping[str, Any]) -> str | None:
    """The attribute of the line's label: the key ``k`` that has a ``k-metadata`` next to it."""
    names = [
        k[: -len("-metadata")] for k in line if k.endswith("-metadata") and k[: -len("-metadata")] in line
    ]
    return names[-1] if names else None


def _common(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "human_annotated": str(metadata.get("human-annotated", "")).lower() == "yes",
        "job_name": str(metadata.get("job-name", "")),
        "creation_date": str(metadata.get("creation-date", "")),
        "type": str(metadata.get("type", "")),
    }


def _classification(
    ref: str | None, text: str | None, value: Any, metadata: Mapping[str, Any]
) -> ClassificationLabel:
    return ClassificationLabel(
        source_ref=ref,
        source=text,
        label=int(value),  # the docs show the index both as a number and as a string
        class_name=str(metadata["class-name"]),
        confidence=float(metadata.get("confidence", 0.0)),
        **_common(metadata),
    )


def _multilabel(ref: str | None, text: str | None, value: Any, metadata: Mapping[str, Any]) -> MultiLabel:
    class_map = {str(k): str(v) for k, v in (metadata.get("class-map") or {}).items()}
    confidence_map = metadata.get("confidence-map") or {}
    labels = tuple(int(v) for v in value)
    return MultiLabel(
        source_ref=ref,
        source=text,
        labels=labels,
        class_names=tuple(class_map.get(str(i), str(i)) for i in labels),
        confidences={class_map.get(str(k), str(k)): float(v) for k, v in confidence_map.items()},
        **_common(metadata),
    )


def _boxes(ref: str | None, value: Mapping[str, Any], metadata: Mapping[str, Any]) -> BoundingBoxes:
    class_map = {str(k): str(v) for k, v in (metadata.get("class-map") or {}).items()}
    objects = metadata.get("objects") or []
    boxes = []
    for i, box in enumerate(value.get("annotations") or []):
        confidence = objects[i].get("confidence") if i < len(objects) else None
        boxes.append(
            BoundingBox(
                class_id=int(box["class_id"]),
                class_name=class_map.get(str(box["class_id"]), str(box["class_id"])),
                left=int(box["left"]),
                top=int(box["top"]),
                width=int(box["width"]),
                height=int(box["height"]),
                confidence=None if confidence is None else float(confidence),
            )
        )
    sizes = value.get("image_size") or []
    size = (
        ImageSize(int(sizes[0]["width"]), int(sizes[0]["height"]), sizes[0].get("depth")) if sizes else None
    )
    return BoundingBoxes(source_ref=ref, annotations=tuple(boxes), image_size=size, **_common(metadata))


def parse_output_line(line: Mapping[str, Any], attribute: str | None = None) -> Record:
    """One decoded output line as a record; ``attribute`` defaults to the one the line carries."""
    ref, text = line.get("source-ref"), line.get("source")
    name = attribute or label_attribute(line)
    if name is None or name not in line or f"{name}-metadata" not in line:
        return Unlabeled(ref, text)
    value, metadata = line[name], line[f"{name}-metadata"]
    kind = str(metadata.get("type", ""))
    if kind in CLASSIFICATION_TYPES or (not kind and "class-name" in metadata):
        return _classification(ref, text, value, metadata)
    if kind in MULTILABEL_TYPES:
        return _multilabel(ref, text, value, metadata)
    if kind == BOUNDING_BOX_TYPE:
        return _boxes(ref, value, metadata)
    return OtherLabel(source_ref=ref, source=text, value=value, metadata=dict(metadata), type=kind)


def read_output_manifest(data: str | bytes | Iterable[str], attribute: str | None = None) -> Iterator[Record]:
    """Records of an output manifest, one per non-blank line, in order.

    :param data: the manifest's text or bytes, or its lines.
    :param attribute: the label attribute name; by default each line's own.
    :raises ManifestFormatError: a line that is not a JSON object, or a label that does not parse.
    """
    if isinstance(data, bytes):
        data = data.decode()
    lines = data.splitlines() if isinstance(data, str) else data
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            decoded = json.loads(raw)
            if not isinstance(decoded, dict):
                raise TypeError("not a JSON object")
            yield parse_output_line(decoded, attribute)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise ManifestFormatError(f"output manifest line {number}: {type(err).__name__}: {err}") from err


def label_accuracy(records: Iterable[Record], truth: Mapping[str, Any]) -> float:
    """The share of labeled records whose label equals ``truth[key]`` (a class name, or names).

    Records without a truth entry and unlabeled records are not counted; 0.0 when none count.
    """
    right = total = 0
    for record in records:
        if record.key not in truth:
            continue
        expected = truth[record.key]
        if isinstance(record, ClassificationLabel):
            total += 1
            right += record.class_name == str(expected)
        elif isinstance(record, MultiLabel):
            total += 1
            right += set(record.class_names) == {str(e) for e in expected}
    return right / total if total else 0.0
