"""The drift report: all scores as JSON, and a small self-contained HTML page with a chart per feature.

The page is plain HTML with inline SVG (no scripts, no external assets), so it opens from S3, from a
mail attachment or from the Airflow UI's rendered template alike. After the decision comes one summary
table of every feature, worst first (:func:`~airflow_dl_provider.drift.severity.ranked`: drifted, then
by severity, then ``f2`` before ``f10``), then each feature's chart in the same order.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.drift.severity import ranked

if TYPE_CHECKING:
    from airflow_dl_provider.drift.check import DriftResult, FeatureDrift

_WIDTH, _HEIGHT, _PAD = 360, 120, 16
_REFERENCE, _CURRENT = "#8aa1b1", "#d9534f"


def report_json(result: DriftResult, extra: dict[str, Any] | None = None) -> str:
    """Every score of every feature, the thresholds and the decision, plus ``extra`` (URIs, run)."""
    body = result.to_dict()
    for name, feature in result.features.items():
        body["features"][name]["chart"] = feature.chart
    if extra:
        body.update(extra)
    return json.dumps(body, indent=2, sort_keys=False, default=str)


def _bars(feature: FeatureDrift) -> str:
    """Reference and current proportions per bin as paired bars."""
    labels = feature.chart.get("labels") or []
    reference = feature.chart.get("reference") or []
    current = feature.chart.get("current") or []
    if not labels:
        return "<p class='muted'>no values to chart</p>"
    top = max([*reference, *current, 1e-12])
    slot = (_WIDTH - 2 * _PAD) / len(labels)
    bar = max(slot / 2 - 1, 1)
    parts = [
        f"<svg width='{_WIDTH}' height='{_HEIGHT + 20}' role='img' aria-label='{html.escape(feature.name)}'>"
    ]
    for i, (label, ref, cur) in enumerate(zip(labels, reference, current, strict=False)):
        x = _PAD + i * slot
        for offset, value, color, side in (
            (0.0, ref, _REFERENCE, "reference"),
            (bar, cur, _CURRENT, "current"),
        ):
            h = (_HEIGHT - _PAD) * value / top
            parts.append(
                f"<rect x='{x + offset:.1f}' y='{_HEIGHT - h:.1f}' width='{bar:.1f}' height='{h:.1f}' fill='{color}'>"
                f"<title>{html.escape(str(label))} {side}: {value:.3f}</title></rect>"
            )
    parts.append(f"<line x1='{_PAD}' y1='{_HEIGHT}' x2='{_WIDTH - _PAD}' y2='{_HEIGHT}' stroke='#555'/>")
    parts.append(f"<text x='{_PAD}' y='{_HEIGHT + 14}' font-size='10'>{html.escape(str(labels[0]))}</text>")
    parts.append(
        f"<text x='{_WIDTH - _PAD}' y='{_HEIGHT + 14}' font-size='10' text-anchor='end'>{html.escape(str(labels[-1]))}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _score_rows(feature: FeatureDrift) -> str:
    rows = []
    for key, value in feature.scores.items():
        shown = "-" if value is None else f"{value:.4g}"
        rows.append(f"<tr><td>{html.escape(key)}</td><td>{shown}</td></tr>")
    return "".join(rows)


# The summary's score columns: (heading, score key).
_SUMMARY_SCORES = (
    ("PSI", "psi"),
    ("KS", "ks_statistic"),
    ("Wasserstein (sd)", "wasserstein_normed"),
    ("JS", "js_distance"),
    ("missing change", "missing_rate_change"),
)


def _shown(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _summary(result: DriftResult, order: list[tuple[str, float]]) -> str:
    """One row per feature, in ``order``: status, severity, the main scores and why."""
    heads = ["feature", "status", "severity", *(head for head, _ in _SUMMARY_SCORES), "why"]
    rows = []
    for name, value in order:
        feature = result.features[name]
        style = {"drifted": "bad", "stable": "ok"}.get(feature.status, "muted")
        why = "; ".join(feature.reasons) or feature.note or ""
        cells = [
            f"<td><a href='#feature-{html.escape(name)}'>{html.escape(name)}</a></td>",
            f"<td><span class='{style}'>{html.escape(feature.status)}</span></td>",
            f"<td class='num'>{'absent' if math.isinf(value) else f'{value:.3g}'}</td>",
            *(f"<td class='num'>{_shown(feature.scores.get(key))}</td>" for _, key in _SUMMARY_SCORES),
            f"<td>{html.escape(why)}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{h}</th>" for h in heads)
    return (
        "<h2>Features by severity</h2><p class='muted'>severity: the largest score / threshold "
        "(1 = at a threshold)</p>"
        f"<table class='summary'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def report_html(result: DriftResult, title: str = "Drift report", extra: dict[str, Any] | None = None) -> str:
    """A one-page HTML report: the decision, a summary table of every feature ranked by severity,
    then per feature (same order) its chart, verdict and scores."""
    verdict = "DRIFT" if result.drifted else "no drift"
    flagged = ", ".join(result.features_drifted) or "none"
    facts = {
        "model version": result.model_version or "-",
        "rows checked": f"{result.rows:,}",
        "features drifted": f"{len(result.features_drifted)} of {len(result.features)} ({flagged})",
        "too few rows to judge": ", ".join(result.features_too_few_rows) or "none",
        "thresholds": ", ".join(f"{k}={v}" for k, v in result.thresholds.to_dict().items()),
        **{k: str(v) for k, v in (extra or {}).items()},
    }
    sections = []
    # Drifted features first, worst first: they are what the reader came for.
    order = ranked(
        {name: {"drifted": f.drifted, "scores": f.scores} for name, f in result.features.items()},
        result.thresholds.to_dict(),
    )
    for feature in (result.features[name] for name, _ in order):
        style = {"drifted": "bad", "stable": "ok"}.get(feature.status, "muted")
        badge = f"<span class='{style}'>{html.escape(feature.status)}</span>"
        reasons = "; ".join(feature.reasons) or feature.note or "no threshold crossed"
        sections.append(
            f"<section id='feature-{html.escape(feature.name)}'><h2>{html.escape(feature.name)} <small>{feature.kind}</small> {badge}</h2>"
            f"<p class='muted'>{html.escape(reasons)} &middot; rows {feature.rows:,}, missing {feature.missing:,}"
            f", invalid {feature.invalid:,}</p>"
            f"<div class='row'>{_bars(feature)}<table>{_score_rows(feature)}</table></div></section>"
        )
    fact_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts.items()
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font:14px sans-serif;margin:24px;color:#222}h1 span{padding:2px 8px;border-radius:4px}"
        "section{border-top:1px solid #ddd;padding:8px 0}.row{display:flex;gap:24px;align-items:flex-start}"
        "td,th{padding:1px 8px;text-align:left}.muted{color:#666}.bad{background:#f8d7da;color:#842029;padding:1px 6px}"
        ".ok{background:#d1e7dd;color:#0f5132;padding:1px 6px}.num{text-align:right}"
        ".summary{border-collapse:collapse;margin:8px 0 16px}.summary th,.summary td{border-bottom:1px solid #ddd}"
        f"</style></head><body><h1>{html.escape(title)}: <span class='{'bad' if result.drifted else 'ok'}'>{verdict}</span></h1>"
        f"<table>{fact_rows}</table>{_summary(result, order)}"
        f"<p><svg width='12' height='12'><rect width='12' height='12' fill='{_REFERENCE}'/></svg> baseline "
        f"<svg width='12' height='12'><rect width='12' height='12' fill='{_CURRENT}'/></svg> current</p>"
        + "".join(sections)
        + "</body></html>"
    )
