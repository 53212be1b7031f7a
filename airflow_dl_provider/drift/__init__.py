"""Drift detection, a numpy core: no Airflow, no pandas; scipy.special (p-values) loads on first use.

Build a :class:`BaselineProfile` once from the training data and save it next to the model; later,
stream any data set through :func:`check_drift` in chunks (the readers yield them) and get one
:class:`DriftResult`. :func:`parse_constraint_violations` gives the same result from SageMaker
Model Monitor's output.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names re-exported from the submodules, imported on first use: the operators import this package
# while a DAG file is parsed, and numpy has no business loading then.
_EXPORTS = {
    "BaselineProfile": "profile",
    "CategoricalProfile": "profile",
    "DriftCheck": "check",
    "DriftResult": "check",
    "DriftThresholds": "thresholds",
    "FORMAT_VERSION": "profile",
    "FeatureDrift": "check",
    "NumericProfile": "profile",
    "baseline_uri_for": "profile",
    "build_baseline": "baseline",
    "check_drift": "check",
    "guess_format": "readers",
    "load_baseline": "profile",
    "parse_constraint_violations": "monitor",
    "read_chunks": "readers",
    "read_constraint_violations": "monitor",
    "read_csv": "readers",
    "read_data_capture": "readers",
    "read_jsonl": "readers",
    "read_parquet": "readers",
    "report_html": "report",
    "report_json": "report",
    "save_baseline": "profile",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
