"""SplitDatasetOperator from a Ground Truth classification manifest of PNG and JPEG images.

The images are made here with Pillow and stored in the local backend's embedded S3 server; the
operator turns each labeled image into a row of its gray pixels (0..16) beside its label.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np
import pytest
from PIL import Image

from airflow_dl_provider.operators.datasets import PIXEL_SCALE, SplitDatasetOperator

SIDE = 8


def _image(level: int, fmt: str) -> bytes:
    pixels = np.full((SIDE, SIDE), level, dtype=np.uint8)
    pixels[0, 0] = 255 - level  # one pixel apart, so a row says which image it came from
    buffer = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(buffer, format="JPEG", quality=100)
    else:
        Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _manifest_line(uri: str, label: str) -> str:
    metadata = {
        "class-name": label,
        "confidence": 0.9,
        "type": "groundtruth/image-classification",
        "job-name": "labeling-job/digits",
        "human-annotated": "yes",
        "creation-date": "2026-01-01T00:00:00",
    }
    return json.dumps({"source-ref": uri, "digit": 0, "digit-metadata": metadata})


def _split(local_backend: Any, task_context: Any, lines: list[str]) -> tuple[dict[str, Any], list[list[str]]]:
    local_backend.upload("labels/output.manifest", "\n".join(lines) + "\n")
    op = SplitDatasetOperator(
        task_id="prepare",
        source=local_backend.uri("labels/output.manifest"),
        source_format="manifest",
        output_prefix=local_backend.uri("datasets"),
        labeled_output=local_backend.uri("labeled/all.csv"),
        validation_fraction=0.0,
        test_fraction=0.0,
    )
    result = op.execute(task_context("manual__split", task_id="prepare"))
    body = local_backend.s3.get_object(Bucket=local_backend.bucket, Key="labeled/all.csv")["Body"].read()
    return result, list(csv.reader(io.StringIO(body.decode())))


def test_png_and_jpeg_images_become_rows_of_their_pixels(local_backend: Any, task_context: Any) -> None:
    images = {"digits/a.png": (40, "PNG", "three"), "digits/b.jpg": (200, "JPEG", "seven")}
    lines = []
    for key, (level, fmt, label) in images.items():
        lines.append(_manifest_line(local_backend.upload(key, _image(level, fmt)), label))

    result, rows = _split(local_backend, task_context, lines)

    assert result["rows"] == {"train": 2}
    assert rows[0] == ["label", *[f"p{i}" for i in range(SIDE * SIDE)]]
    by_label = {row[0]: [float(v) for v in row[1:]] for row in rows[1:]}
    assert set(by_label) == {"three", "seven"}
    for level, _fmt, label in images.values():
        pixels = np.array(by_label[label]).reshape(SIDE, SIDE) / PIXEL_SCALE * 255
        # PNG is exact; JPEG at quality 100 within a few levels (and the 3 significant digits written).
        assert np.abs(pixels[1:, 1:] - level).max() < 4, label
        assert abs(pixels[0, 0] - (255 - level)) < 12, label


def test_an_unreadable_image_names_its_source_ref(local_backend: Any, task_context: Any) -> None:
    uri = local_backend.upload("digits/broken.jpg", b"not really a jpeg")
    with pytest.raises(
        ValueError, match=r"^source-ref s3://.*/digits/broken\.jpg: not an image Pillow can read"
    ):
        _split(local_backend, task_context, [_manifest_line(uri, "one")])
