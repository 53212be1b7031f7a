"""Manifests: inputs built from prefixes and text, label configs, and the output-manifest reader.

The fixtures are the examples of the Ground Truth developer guide's "Labeling job output data" page
(classification, multi-label and bounding-box jobs), one JSON object per line as Ground Truth writes
them, with the bucket renamed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_dl_provider.manifests import (
    BoundingBox,
    BoundingBoxes,
    ClassificationLabel,
    ImageSize,
    ManifestFormatError,
    MultiLabel,
    OtherLabel,
    Unlabeled,
    build_manifest_from_prefix,
    build_manifest_from_text_lines,
    count_manifest_objects,
    label_accuracy,
    read_output_manifest,
    write_label_category_config,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_classification_output() -> None:
    records = list(read_output_manifest((FIXTURES / "classification.manifest").read_text()))
    first, second, text, unlabeled = records
    assert first == ClassificationLabel(
        source_ref="s3://example-bucket/image_example.png",
        label=0,
        class_name="football",
        confidence=0.0,
        human_annotated=True,
        job_name="identify-sport",
        creation_date="2018-10-18T22:18:13.527256",
        type="groundtruth/image-classification",
    )
    assert (second.label, second.class_name, second.human_annotated) == (1, "tennis", False)
    assert isinstance(text, ClassificationLabel)
    assert (text.source, text.source_ref, text.key, text.class_name) == (
        "The food was delicious",
        None,
        "The food was delicious",
        "positive",
    )
    assert text.type == "groundtruth/text-classification" and text.confidence == 0.8
    assert unlabeled == Unlabeled("s3://example-bucket/not_labeled_yet.png")


def test_multilabel_output() -> None:
    image, text = read_output_manifest((FIXTURES / "multilabel.manifest").read_bytes())
    assert isinstance(image, MultiLabel)
    assert image.labels == (1, 0, 8)
    assert image.class_names == ("bicycle", "person", "clothing")
    assert image.confidences == {"bicycle": 0.95, "person": 0.77, "clothing": 0.2}
    assert image.job_name == "labeling-job/image-label-attribute-name"
    assert isinstance(text, MultiLabel) and text.class_names == ("approving", "sad", "critical")
    assert text.type == "groundtruth/text-classification-multilabel"


def test_bounding_box_output() -> None:
    [record] = read_output_manifest((FIXTURES / "bounding_box.manifest").read_text().splitlines())
    assert isinstance(record, BoundingBoxes)
    assert record.image_size == ImageSize(500, 400, 3)
    assert record.annotations[0] == BoundingBox(0, "dog", 111, 134, 61, 128, 0.8)
    assert [b.class_name for b in record.annotations] == ["dog", "bone", "bone"]
    assert [b.confidence for b in record.annotations] == [0.8, 0.9, 0.9]
    assert record.human_annotated and record.job_name == "identify-dogs-and-toys"


def test_other_types_keep_the_raw_value_and_explicit_attribute_wins() -> None:
    line = {
        "source-ref": "s3://b/a.png",
        "mask-ref": "s3://b/out/a.png",
        "mask-ref-metadata": {"type": "groundtruth/semantic-segmentation", "internal-color-map": {}},
        "old": 1,
        "old-metadata": {"class-name": "x", "type": "groundtruth/image-classification"},
    }
    [record] = read_output_manifest([json.dumps(line)], attribute="mask-ref")
    assert isinstance(record, OtherLabel) and record.value == "s3://b/out/a.png"


def test_bad_line_names_its_number() -> None:
    with pytest.raises(ManifestFormatError, match=r"^output manifest line 2: "):
        list(read_output_manifest('{"source-ref": "s3://b/a"}\n[1, 2]\n'))


def test_label_accuracy() -> None:
    records = list(read_output_manifest((FIXTURES / "classification.manifest").read_text()))
    truth = {
        "s3://example-bucket/image_example.png": "football",
        "s3://example-bucket/example_image.jpg": "golf",
        "s3://example-bucket/not_labeled_yet.png": "tennis",
    }
    assert label_accuracy(records, truth) == 0.5
    multi = list(read_output_manifest((FIXTURES / "multilabel.manifest").read_text()))
    assert (
        label_accuracy(multi, {"s3://example-bucket/example_image.jpg": ["person", "bicycle", "clothing"]})
        == 1.0
    )
    assert label_accuracy([], truth) == 0.0


def test_input_manifests() -> None:
    keys = ["img/b.png", "img/a.JPG", "img/", "img/notes.txt", "img/a.JPG"]
    assert build_manifest_from_prefix(keys, "bkt") == [
        '{"source-ref": "s3://bkt/img/a.JPG"}',
        '{"source-ref": "s3://bkt/img/b.png"}',
    ]
    lines = build_manifest_from_text_lines('great "food"\n\n  slow service  \n')
    assert [json.loads(line) for line in lines] == [{"source": 'great "food"'}, {"source": "slow service"}]
    assert count_manifest_objects("\n".join(lines) + "\n\n") == 2


def test_label_category_config() -> None:
    data = write_label_category_config(["cat", "dog"])
    assert json.loads(data) == {
        "document-version": "2018-11-28",
        "labels": [{"label": "cat"}, {"label": "dog"}],
    }
    assert data == write_label_category_config(["cat", "dog"])
    with pytest.raises(ValueError, match=r"^labels: 'cat' appear more than once"):
        write_label_category_config(["cat", "dog", "cat"])
