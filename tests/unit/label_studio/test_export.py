"""Label Studio export -> Ground Truth output manifest: consolidation, metadata, what the readers accept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_dl_provider.label_studio.configs import OBJECT_META, choices_result, label_config, object_key
from airflow_dl_provider.label_studio.export import Label, consolidate, human_labels, output_manifest
from airflow_dl_provider.manifests import ClassificationLabel, MultiLabel, Unlabeled, read_output_manifest
from airflow_dl_provider.validation.data import flatten_manifest_record

LABELS = ["cat", "dog", "bird"]


def _annotation(names: list[str], *, cancelled: bool = False, user: int = 2) -> dict[str, Any]:
    return {
        "completed_by": user,
        "result": choices_result("image_classification", names),
        "was_cancelled": cancelled,
        "created_at": "2026-12-01T11:12:10.141015Z",
    }


def _task(uri: str, *annotations: dict[str, Any]) -> dict[str, Any]:
    # Label Studio rewrites s3:// data into its resolve URLs in listings; the key lives in meta.
    return {
        "data": {"image": f"/tasks/1/resolve/?fileuri={uri}"},
        "meta": {OBJECT_META: uri},
        "annotations": list(annotations),
    }


def test_majority_vote_with_the_winning_share_as_confidence() -> None:
    exported = [
        _task("s3://b/1.png", _annotation(["dog"]), _annotation(["dog"]), _annotation(["cat"])),
        _task("s3://b/2.png", _annotation(["bird"])),
        _task("s3://b/3.png", _annotation(["cat"], cancelled=True)),
        _task("s3://b/4.png", _annotation(["wolf"])),  # a label edited into the config in the UI
    ]

    found = human_labels(exported, "image_classification", LABELS)

    assert set(found) == {"s3://b/1.png", "s3://b/2.png"}
    assert found["s3://b/1.png"].indexes == (1,) and found["s3://b/1.png"].confidences == (0.67,)
    # One annotator: 0.00, as Ground Truth writes a single worker's confidence.
    assert found["s3://b/2.png"].confidences == (0.0,)
    assert found["s3://b/1.png"].creation_date == "2026-12-01T11:12:10.141015"


def test_a_tie_is_broken_the_same_way_every_time() -> None:
    winners = {consolidate([(0,), (1,)], multi_label=False, tie_key="s3://b/x.png") for _ in range(5)}

    assert len(winners) == 1
    assert winners.pop()[1] == (0.5,)


def test_multi_label_keeps_labels_chosen_by_more_than_half() -> None:
    indexes, confidences = consolidate([(0, 1), (1,), (1, 2)], multi_label=True, tie_key="k")

    assert indexes == (1,) and confidences == (1.0,)


def test_the_manifest_has_ground_truths_keys_and_reads_back() -> None:
    lines = [{"source-ref": f"s3://b/{i}.png"} for i in range(1, 4)]
    found = {
        "s3://b/1.png": Label((1,), (0.67,), True, "2026-12-01T11:12:10.141015"),
        "s3://b/2.png": Label((2,), (0.97,), False, "2026-12-01T11:13:00.000000"),
    }

    body, counters = output_manifest(
        lines,
        found,
        task_type="image_classification",
        labels=LABELS,
        attribute="label",
        job_name="label-studio-project/p",
    )

    assert counters == {
        "TotalLabeled": 2,
        "HumanLabeled": 1,
        "MachineLabeled": 1,
        "FailedNonRetryableError": 0,
        "Unlabeled": 1,
    }
    first, second, third = map(json.loads, body.decode().splitlines())
    assert first["label"] == 1
    assert first["label-metadata"] == {
        "type": "groundtruth/image-classification",
        "job-name": "label-studio-project/p",
        "human-annotated": "yes",
        "creation-date": "2026-12-01T11:12:10.141015",
        "class-name": "dog",
        "confidence": 0.67,
    }
    assert second["label-metadata"]["human-annotated"] == "no"
    assert third == {"source-ref": "s3://b/3.png"}
    records = list(read_output_manifest(body))
    assert isinstance(records[0], ClassificationLabel) and records[0].human_annotated
    assert isinstance(records[1], ClassificationLabel) and not records[1].human_annotated
    assert isinstance(records[2], Unlabeled)
    flat = flatten_manifest_record(first, ["label"])
    assert flat["label-class-name"] == "dog" and flat["label-confidence"] == 0.67


def test_multi_label_manifest_uses_class_and_confidence_maps() -> None:
    body, _ = output_manifest(
        [{"source": "a sentence"}],
        {"a sentence": Label((0, 2), (1.0, 0.67), True, "2026-12-01T11:12:10.141015")},
        task_type="text_multilabel_classification",
        labels=LABELS,
        attribute="label",
        job_name="label-studio-project/p",
    )

    (record,) = read_output_manifest(body)
    assert isinstance(record, MultiLabel)
    assert record.class_names == ("cat", "bird")
    assert record.confidences == {"cat": 1.0, "bird": 0.67}


def test_label_config_lists_the_labels_in_class_order() -> None:
    import xml.etree.ElementTree as ElementTree

    labels = ['a "quoted" <label>', "b & c", "d"]
    root = ElementTree.fromstring(label_config("image_classification", labels, header="Which?"))

    (image,) = root.iter("Image")
    (choices,) = root.iter("Choices")
    assert (image.get("name"), image.get("value")) == ("image", "$image")
    assert (choices.get("toName"), choices.get("choice")) == ("image", "single")
    assert [c.get("value") for c in choices.iter("Choice")] == labels
    multi = ElementTree.fromstring(label_config("text_multilabel_classification", ["a", "b"]))
    assert next(multi.iter("Choices")).get("choice") == "multiple"
    assert next(multi.iter("Text")).get("value") == "$text"


def test_object_key_prefers_meta_over_rewritten_data() -> None:
    task = _task("s3://b/1.png")

    assert object_key("image_classification", task) == "s3://b/1.png"
    assert object_key("text_classification", {"data": {"text": "hello"}}) == "hello"


def test_unsupported_task_type_is_one_line() -> None:
    with pytest.raises(
        ValueError, match=r"task_type: 'bounding_box' is not labeled through Label Studio here"
    ):
        label_config("bounding_box", ["a"])
