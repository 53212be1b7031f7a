"""Ground Truth manifests: build input manifests and label configs, read output manifests. Pure."""

from __future__ import annotations

import importlib
from typing import Any

# Re-exported names load their submodule on first use: the labeling operator imports this package
# while a DAG file is parsed, and the output-manifest reader is only needed when a task runs.
_EXPORTS = {
    "BoundingBox": "output",
    "BoundingBoxes": "output",
    "ClassificationLabel": "output",
    "ImageSize": "output",
    "ManifestFormatError": "output",
    "MultiLabel": "output",
    "OtherLabel": "output",
    "Unlabeled": "output",
    "build_manifest_from_prefix": "input",
    "build_manifest_from_text_lines": "input",
    "count_manifest_objects": "input",
    "label_accuracy": "output",
    "read_output_manifest": "output",
    "write_label_category_config": "input",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
