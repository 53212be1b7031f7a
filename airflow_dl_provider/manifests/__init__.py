"""Ground Truth manifests: build input manifests and label configs, read output manifests. Pure."""

from __future__ import annotations

from typing import Any

from airflow_dl_provider.reexports import LazyExports

# Re-exported names load their submodule on first use: the labeling operator imports this package
# while a DAG file is parsed, and the output-manifest reader is only needed when a task runs.
_EXPORTS = LazyExports(
    __name__,
    {
        "input": (
            "build_manifest_from_prefix",
            "build_manifest_from_text_lines",
            "count_manifest_objects",
            "write_label_category_config",
        ),
        "output": (
            "BoundingBox",
            "BoundingBoxes",
            "ClassificationLabel",
            "ImageSize",
            "ManifestFormatError",
            "MultiLabel",
            "OtherLabel",
            "Unlabeled",
            "label_accuracy",
            "read_output_manifest",
        ),
    },
)
__all__ = _EXPORTS.names


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)
