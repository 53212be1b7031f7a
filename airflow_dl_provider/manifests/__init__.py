"""Ground Truth manifests: build input manifests and label configs, read output manifests. Pure."""

from __future__ import annotations

from airflow_dl_provider.manifests.input import (
    build_manifest_from_prefix,
    build_manifest_from_text_lines,
    count_manifest_objects,
    write_label_category_config,
)
from airflow_dl_provider.manifests.output import (
    BoundingBox,
    BoundingBoxes,
    ClassificationLabel,
    ImageSize,
    ManifestFormatError,
    MultiLabel,
    OtherLabel,
    Unlabeled,
    label_accuracy,
    read_output_manifest,
)

__all__ = [
    "BoundingBox",
    "BoundingBoxes",
    "ClassificationLabel",
    "ImageSize",
    "ManifestFormatError",
    "MultiLabel",
    "OtherLabel",
    "Unlabeled",
    "build_manifest_from_prefix",
    "build_manifest_from_text_lines",
    "count_manifest_objects",
    "label_accuracy",
    "read_output_manifest",
    "write_label_category_config",
]
