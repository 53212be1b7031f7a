"""SageMaker Model Monitor's ``constraint_violations.json`` as the same decision our check makes.

A monitoring schedule that already runs Model Monitor writes one violations file per execution;
reading it here gives a :class:`~airflow_dl_provider.drift.check.DriftResult` with the same
``min_features_drifted`` rule, so a DAG can branch and emit Asset events the same way whichever
produced the evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_dl_provider.drift.check import DriftResult, DriftThresholds, FeatureDrift
from airflow_dl_provider.exceptions import DriftInputError

#: Check types that mean the distribution moved; the others (data_type_check, completeness_check,
#: missing_column_check, extra_column_check) are data quality, reported but not counted as drift.
DRIFT_CHECKS = ("baseline_drift_check", "categorical_values_check")
KNOWN_CHECKS = (
    "baseline_drift_check",
    "categorical_values_check",
    "completeness_check",
    "data_type_check",
    "extra_column_check",
    "missing_column_check",
)
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_DISTANCE = re.compile(rf"distance:?\s*{_NUMBER}", re.IGNORECASE)
_THRESHOLD = re.compile(rf"threshold:?\s*{_NUMBER}", re.IGNORECASE)


def parse_constraint_violations(
    data: Mapping[str, Any] | str | bytes,
    thresholds: DriftThresholds | None = None,
    drift_checks: Sequence[str] = DRIFT_CHECKS,
    where: str = "constraint_violations.json",
) -> DriftResult:
    """Model Monitor's violations as a :class:`DriftResult`.

    Each feature with a violation of a ``drift_checks`` type is flagged; its ``scores`` hold the
    ``baseline_drift_distance`` and ``baseline_drift_threshold`` parsed from the description where
    Model Monitor wrote them, and its ``reasons`` the check types with their descriptions.

    :param drift_checks: the check types that count as drift (add ``data_type_check`` etc. to fail
        on data quality too).
    """
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as err:
            raise DriftInputError(f"violations: {where} is not JSON ({err})") from None
    violations = data.get("violations") if isinstance(data, Mapping) else None
    if not isinstance(violations, list):
        raise DriftInputError(
            f"violations: {where} has no 'violations' list; is it Model Monitor's constraint_violations.json?"
        )
    unknown = sorted(set(drift_checks) - set(KNOWN_CHECKS))
    if unknown:
        raise DriftInputError(f"drift_checks: unknown check type(s) {unknown}; known: {list(KNOWN_CHECKS)}")
    thresholds = thresholds or DriftThresholds()
    features: dict[str, FeatureDrift] = {}
    for i, violation in enumerate(violations):
        if not isinstance(violation, Mapping) or "constraint_check_type" not in violation:
            raise DriftInputError(f"violations: {where} entry {i} has no constraint_check_type")
        name = str(violation.get("feature_name", "")) or "<dataset>"
        check = str(violation["constraint_check_type"])
        description = str(violation.get("description", ""))
        feature = features.setdefault(
            name,
            FeatureDrift(
                name=name, kind="monitor", drifted=False, reasons=[], rows=0, missing=0, invalid=0, scores={}
            ),
        )
        feature.reasons.append(f"{check}: {description}" if description else check)
        feature.scores[f"{check}_violations"] = (feature.scores.get(f"{check}_violations") or 0.0) + 1.0
        if check == "baseline_drift_check":
            for key, pattern in (
                ("baseline_drift_distance", _DISTANCE),
                ("baseline_drift_threshold", _THRESHOLD),
            ):
                match = pattern.search(description)
                if match:
                    feature.scores[key] = float(match.group(1))
        if check in drift_checks:
            feature.drifted = True
    flagged = sum(f.drifted for f in features.values())
    return DriftResult(
        drifted=flagged >= thresholds.min_features_drifted,
        features=features,
        rows=0,
        thresholds=thresholds,
    )


def read_constraint_violations(
    s3: Any,
    uri: str,
    thresholds: DriftThresholds | None = None,
    drift_checks: Sequence[str] = DRIFT_CHECKS,
) -> DriftResult:
    """Read ``constraint_violations.json`` from ``s3://`` (boto3 client ``s3``) and parse it."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise DriftInputError(f"violations_uri: {uri!r} is not an s3://bucket/key URI")
    if key.endswith("/") or not key.endswith(".json"):
        key = key.rstrip("/") + "/constraint_violations.json"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
        raise DriftInputError(f"violations_uri: cannot read s3://{bucket}/{key} ({code})") from None
    return parse_constraint_violations(body, thresholds, drift_checks, where=f"s3://{bucket}/{key}")
