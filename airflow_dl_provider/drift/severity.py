"""How bad each feature's drift is, and the order a reader wants: worst first, ``f2`` before ``f10``.

Shared by the drift report (:mod:`.report`) and the provider's UI page, so both rank alike. Works on
the JSON form of a result (``DriftResult.to_dict()`` or the report file read back).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

# Drift scores with a threshold of the same name: a feature's severity is its largest score/threshold.
SEVERITY_SCORES = ("psi", "ks_statistic", "wasserstein_normed", "js_distance")


def severity(feature: Mapping[str, Any], thresholds: Mapping[str, Any]) -> float:
    """How far past its thresholds a feature is: its largest score / threshold (1.0 = at a threshold).

    A missing-rate change counts against ``missing_rate``; a drifted feature with no score to compare
    (absent from the data, a constraint violation) is the most severe there is.
    """
    scores = feature.get("scores") or {}
    ratios = [
        abs(float(scores[name])) / float(thresholds[name])
        for name in SEVERITY_SCORES
        if scores.get(name) is not None and thresholds.get(name)
    ]
    if scores.get("missing_rate_change") is not None and thresholds.get("missing_rate"):
        ratios.append(abs(float(scores["missing_rate_change"])) / float(thresholds["missing_rate"]))
    if feature.get("drifted") and not ratios:
        return float("inf")
    return max(ratios, default=0.0)


def natural_key(name: str) -> list[Any]:
    """``p2`` before ``p10``: digit runs compare as numbers (text parts keep their own order)."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part
    ]


def ranked(
    features: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, Any]
) -> list[tuple[str, float]]:
    """``(name, severity)`` of every feature: drifted first, each group by severity (highest first),
    ties in natural name order."""
    scored = [
        (name, severity(feature, thresholds), bool(feature.get("drifted")))
        for name, feature in features.items()
    ]
    scored.sort(key=lambda item: (not item[2], -item[1], natural_key(item[0])))
    return [(name, value) for name, value, _ in scored]
