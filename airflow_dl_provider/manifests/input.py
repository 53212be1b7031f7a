"""What a Ground Truth job reads: the input manifest and the label category config.

An input manifest is JSON Lines, one data object per line: ``{"source-ref": "s3://..."}`` for an
object in S3 (images) or ``{"source": "..."}`` for the text itself (developer guide: "Input
manifest files"). The label category config is ``{"document-version": "2018-11-28", "labels":
[{"label": ...}, ...]}`` ("Create a labeling category configuration file"). Both are built here as
bytes, so the operator can address them by their content and a retry uploads nothing new.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from airflow_dl_provider.presets.labeling import LABEL_CATEGORY_DOCUMENT_VERSION

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# What Ground Truth's image task types take (developer guide: "Supported data formats").
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def build_manifest_from_prefix(
    keys: Iterable[str], bucket: str, *, suffixes: Sequence[str] | None = IMAGE_SUFFIXES
) -> list[str]:
    """One ``source-ref`` line per object key, in key order; "folders" and other file types skipped.

    :param keys: object keys as listed under the prefix.
    :param suffixes: keep keys with these endings (case-insensitive); None keeps every object.
    """
    lines = []
    for key in sorted(set(keys)):
        if key.endswith("/"):
            continue
        if suffixes is not None and not key.lower().endswith(tuple(s.lower() for s in suffixes)):
            continue
        lines.append(json.dumps({"source-ref": f"s3://{bucket}/{key}"}))
    return lines


def build_manifest_from_text_lines(text: str) -> list[str]:
    """One ``source`` line per non-blank line of ``text`` (a text classification data set)."""
    return [
        json.dumps({"source": line.strip()}, ensure_ascii=False) for line in text.splitlines() if line.strip()
    ]


def manifest_bytes(lines: Sequence[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def count_manifest_objects(data: bytes | str) -> int:
    """The number of data objects (non-blank lines) in a manifest."""
    text = data.decode() if isinstance(data, bytes) else data
    return sum(1 for line in text.splitlines() if line.strip())


def duplicate_labels(labels: Sequence[str]) -> list[str]:
    """Labels that appear more than once, in first-seen order."""
    seen: set[str] = set()
    duplicates: list[str] = []
    for label in labels:
        if label in seen and label not in duplicates:
            duplicates.append(label)
        seen.add(label)
    return duplicates


def label_category_config(labels: Sequence[str], *, instructions: str | None = None) -> dict[str, object]:
    """The label category config document for ``labels`` (their order is the class index)."""
    if not labels:
        raise ValueError("labels: give at least one label")
    duplicates = duplicate_labels(labels)
    if duplicates:
        raise ValueError(f"labels: {', '.join(map(repr, duplicates))} appear more than once; each label once")
    config: dict[str, object] = {
        "document-version": LABEL_CATEGORY_DOCUMENT_VERSION,
        "labels": [{"label": str(label)} for label in labels],
    }
    if instructions:
        config["instructions"] = {"shortInstruction": instructions, "fullInstruction": instructions}
    return config


def write_label_category_config(labels: Sequence[str], *, instructions: str | None = None) -> bytes:
    """The label category config as the bytes to upload (stable: same labels, same bytes)."""
    return json.dumps(label_category_config(labels, instructions=instructions), sort_keys=True).encode()


def labels_from_category_config(data: bytes | str) -> list[str]:
    return [str(item["label"]) for item in json.loads(data)["labels"]]


def content_digest(*parts: bytes) -> str:
    """A short content address: equal inputs, equal key, so a retried upload is a no-op."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]
