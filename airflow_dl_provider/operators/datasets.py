"""Prepare training channels: a seeded, reproducible train/validation/test split.

The rows come from a CSV in S3 (header row, one label column), or from a Ground Truth output
manifest of image classification: each labeled image (PNG, JPEG or any format Pillow reads) becomes a
row of its gray pixels with its label.
"""

from __future__ import annotations

import csv
import io
import random
import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.operators.base import S3Operator
from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    from collections.abc import Sequence

CHANNELS = ("train", "validation", "test")
# Pixels are written in the 0..16 range of the 8x8 digits the demo model expects.
PIXEL_SCALE = 16.0
_FETCH_THREADS = 8


def split_rows(
    n_rows: int, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Row indices per channel: the same inputs give the same split, on any machine."""
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction + test_fraction must be < 1, got {validation_fraction + test_fraction:.2f}"
        )
    order = list(range(n_rows))
    random.Random(seed).shuffle(order)
    n_test = round(n_rows * test_fraction)
    n_validation = round(n_rows * validation_fraction)
    return {
        "test": sorted(order[:n_test]),
        "validation": sorted(order[n_test : n_test + n_validation]),
        "train": sorted(order[n_test + n_validation :]),
    }


def rows_from_manifest(s3: Any, manifest: bytes, label_column: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (label, pixels...) for every labeled image of a classification manifest."""
    from airflow_dl_provider.manifests.images import decode_gray
    from airflow_dl_provider.manifests.output import ClassificationLabel, read_output_manifest

    records = [
        r for r in read_output_manifest(manifest) if isinstance(r, ClassificationLabel) and r.source_ref
    ]

    def pixels(uri: str) -> list[str]:
        bucket, key = split_s3_uri(uri, "source-ref")
        try:
            image = decode_gray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ValueError as err:
            raise ValueError(f"source-ref {uri}: {err}; label PNG or JPEG images") from None
        return [f"{v * PIXEL_SCALE:.3g}" for v in image.ravel()]

    with ThreadPoolExecutor(_FETCH_THREADS) as pool:
        features = list(pool.map(pixels, [str(r.source_ref) for r in records]))
    if not features:
        raise ValueError("labels_manifest: no labeled images in the manifest")
    header = [label_column, *[f"p{i}" for i in range(len(features[0]))]]
    return header, [[r.class_name, *f] for r, f in zip(records, features, strict=True)]


class SplitDatasetOperator(S3Operator):
    """Split labeled rows into ``train``/``validation``/``test`` channels.

    Each channel is written as one object under ``<output_prefix>/<run>/<channel>/data.csv``; the
    run's own prefix keeps every training job tied to the exact data it saw. The test rows are also
    written without their label under ``<run>/transform/`` as batch-transform input.

    :param source: ``s3://`` URI of a CSV, or of a Ground Truth output manifest when ``source_format``
        is ``manifest``. (templated)
    :param source_format: ``csv`` (an object, or every ``.csv`` under a prefix ending in ``/``) or
        ``manifest`` (image classification: one row of gray pixels per labeled image, PNG or JPEG).
    :param labeled_output: ``s3://`` URI where the whole labeled table is also written, e.g. under
        the prefix a retraining DAG reads. (templated)
    :param output_prefix: ``s3://`` prefix for the channels. (templated)
    :param label_column: must be a column of the header.
    :return: ``{"train": uri, "validation": uri, "test": uri, "test_features": uri,
        "rows": {channel: count}, "source": uri}``
    """

    template_fields: Sequence[str] = aws_template_fields("source", "output_prefix", "labeled_output")
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        source: str,
        output_prefix: str,
        label_column: str = "label",
        source_format: str = "csv",
        labeled_output: str | None = None,
        validation_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if validation_fraction + test_fraction >= 1.0:
            raise ValueError(f"{self.task_id}: validation_fraction + test_fraction must be < 1")
        if source_format not in ("csv", "manifest"):
            raise ValueError(
                f"{self.task_id}: source_format must be 'csv' or 'manifest', got {source_format!r}"
            )
        self.source = source
        self.source_format = source_format
        self.labeled_output = labeled_output
        self.output_prefix = output_prefix
        self.label_column = label_column
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self.seed = seed

    def _csv_rows(self, s3: Any, bucket: str, key: str) -> tuple[list[str], list[list[str]]]:
        """One CSV object, or every ``.csv`` under a prefix (``source`` ending in ``/``), concatenated."""
        keys = [key]
        if key.endswith("/") or not key:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
            keys = sorted(
                o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".csv")
            )
            if not keys:
                raise ValueError(f"source: no .csv objects under {self.source}")
        header: list[str] = []
        body: list[list[str]] = []
        for part in keys:
            rows = list(
                csv.reader(io.StringIO(s3.get_object(Bucket=bucket, Key=part)["Body"].read().decode()))
            )
            if not rows:
                continue
            if header and rows[0] != header:
                raise ValueError(
                    f"source: s3://{bucket}/{part} has another header than the first CSV; align columns"
                )
            header = rows[0]
            body.extend(rows[1:])
        if not body:
            raise ValueError(f"source: {self.source} has no data rows")
        return header, body

    def execute(self, context: Any) -> dict[str, Any]:
        s3 = self.hook.conn
        bucket, key = split_s3_uri(self.source, "source")
        if self.source_format == "manifest":
            header, body = rows_from_manifest(
                s3, s3.get_object(Bucket=bucket, Key=key)["Body"].read(), self.label_column
            )
        else:
            header, body = self._csv_rows(s3, bucket, key)
        if self.labeled_output:
            self._write_labeled(s3, header, body)
        if self.label_column not in header:
            raise ValueError(
                f"label_column: {self.label_column!r} is not a column of {self.source} ({header[:5]}...)"
            )
        run = re.sub(r"[^A-Za-z0-9_.=-]", "-", context["run_id"])
        out_bucket, out_prefix = split_s3_uri(self.output_prefix.rstrip("/"), "output_prefix")
        result: dict[str, Any] = {"source": self.source, "rows": {}}
        for channel, indices in split_rows(
            len(body), self.validation_fraction, self.test_fraction, self.seed
        ).items():
            if not indices:
                continue
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(body[i] for i in indices)
            channel_key = f"{out_prefix}/{run}/{channel}/"
            s3.put_object(Bucket=out_bucket, Key=channel_key + "data.csv", Body=buffer.getvalue().encode())
            result[channel] = f"s3://{out_bucket}/{channel_key}"
            result["rows"][channel] = len(indices)
            if channel == "test":
                result["test_features"] = self._write_features(
                    s3, out_bucket, f"{out_prefix}/{run}", header, body, indices
                )
        self.log.info("Split %d rows of %s: %s", len(body), self.source, result["rows"])
        return result

    def _write_labeled(self, s3: Any, header: list[str], body: list[list[str]]) -> None:
        """The whole labeled table this run trains on, for later retraining on the newest labeled data."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
        bucket, key = split_s3_uri(str(self.labeled_output), "labeled_output")
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().encode())

    def _write_features(
        self, s3: Any, bucket: str, prefix: str, header: list[str], body: list[list[str]], indices: list[int]
    ) -> str:
        """The test rows without their label and header: what batch transform and drift checks read."""
        label = header.index(self.label_column)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([v for j, v in enumerate(body[i]) if j != label] for i in indices)
        key = f"{prefix}/transform/features.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().encode())
        return f"s3://{bucket}/{prefix}/transform/"
