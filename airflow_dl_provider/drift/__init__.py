"""Drift detection, a numpy core: no Airflow, no pandas; scipy.special (p-values) loads on first use.

Build a :class:`BaselineProfile` once from the training data and save it next to the model; later,
stream any data set through :func:`check_drift` in chunks (the readers yield them) and get one
:class:`DriftResult`. :func:`parse_constraint_violations` gives the same result from SageMaker
Model Monitor's output.
"""

from __future__ import annotations

from typing import Any

from airflow_dl_provider.reexports import LazyExports

# Names re-exported from the submodules, imported on first use: the operators import this package
# while a DAG file is parsed, and numpy has no business loading then.
_EXPORTS = LazyExports(
    __name__,
    {
        "baseline": ("build_baseline",),
        "check": ("DriftCheck", "DriftResult", "FeatureDrift", "check_drift"),
        "monitor": ("parse_constraint_violations", "read_constraint_violations"),
        "profile": (
            "BaselineProfile",
            "CategoricalProfile",
            "FORMAT_VERSION",
            "NumericProfile",
            "baseline_uri_for",
            "load_baseline",
            "save_baseline",
        ),
        "readers": (
            "guess_format",
            "read_chunks",
            "read_csv",
            "read_data_capture",
            "read_jsonl",
            "read_parquet",
        ),
        "report": ("report_html", "report_json"),
        "thresholds": ("DriftThresholds",),
    },
)
__all__ = _EXPORTS.names


def __getattr__(name: str) -> Any:
    return _EXPORTS.load(name)
