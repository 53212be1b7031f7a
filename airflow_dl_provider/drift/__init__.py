"""Drift detection, a pure numpy core: no Airflow, no pandas, no scipy.

Build a :class:`BaselineProfile` once from the training data and save it next to the model; later,
stream any data set through :func:`check_drift` in chunks (the readers yield them) and get one
:class:`DriftResult`. :func:`parse_constraint_violations` gives the same result from SageMaker
Model Monitor's output.
"""

from __future__ import annotations

from airflow_dl_provider.drift.check import (
    DriftCheck,
    DriftResult,
    DriftThresholds,
    FeatureDrift,
    check_drift,
)
from airflow_dl_provider.drift.monitor import parse_constraint_violations, read_constraint_violations
from airflow_dl_provider.drift.profile import (
    FORMAT_VERSION,
    BaselineProfile,
    CategoricalProfile,
    NumericProfile,
    baseline_uri_for,
    build_baseline,
    load_baseline,
    save_baseline,
)
from airflow_dl_provider.drift.readers import (
    guess_format,
    read_chunks,
    read_csv,
    read_data_capture,
    read_jsonl,
    read_parquet,
)
from airflow_dl_provider.drift.report import report_html, report_json

__all__ = [
    "FORMAT_VERSION",
    "BaselineProfile",
    "CategoricalProfile",
    "DriftCheck",
    "DriftResult",
    "DriftThresholds",
    "FeatureDrift",
    "NumericProfile",
    "baseline_uri_for",
    "build_baseline",
    "check_drift",
    "guess_format",
    "load_baseline",
    "parse_constraint_violations",
    "read_chunks",
    "read_constraint_violations",
    "read_csv",
    "read_data_capture",
    "read_jsonl",
    "read_parquet",
    "report_html",
    "report_json",
    "save_baseline",
]
