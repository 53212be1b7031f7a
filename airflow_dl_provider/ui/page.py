"""The page's HTML: one self-contained document per view, inline CSS, no script and no CDN asset.

Everything shown is escaped; links into Airflow's own UI open in the top window, since Airflow 3
shows the page in a frame.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_dl_provider.ui.overview import DriftReport, Leaderboard, Overview, Registry, Run

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1d2433;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #dde2ea;padding-bottom:.25rem}
h3{font-size:1rem;margin:1rem 0 .35rem}
table{border-collapse:collapse;margin:.25rem 0 1rem;font-size:.875rem}
th,td{border:1px solid #dde2ea;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f5f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#66708a}.error{color:#a8071a;background:#fff1f0;border:1px solid #ffa39e;padding:.4rem .6rem}
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;background:#e8ebf1}
.success,.Completed,.COMPLETED,.Approved,.stable{background:#d9f7be}
.failed,.Failed,.FAILED,.Stopped,.Rejected,.drifted{background:#ffccc7}
.running,.InProgress,.INPROGRESS,.queued,.PendingManualApproval{background:#fff1b8}
.champion{background:#bae0ff;font-weight:600}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:.75rem 0}
.card{border:1px solid #dde2ea;border-radius:.4rem;padding:.5rem .8rem;min-width:9rem}
.card b{display:block;font-size:1.2rem}
a{color:#0b57d0}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def badge(value: Any) -> str:
    text = _e(value)
    return f"<span class='badge {text}'>{text}</span>" if text else ""


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


def money(usd: float | None) -> str:
    return "" if usd is None else f"${usd:,.2f}"


def when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if math.isinf(number):
        return "absent"
    return f"{number:.{digits}g}"


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], numeric: Iterable[int] = ()) -> str:
    """Rows of already-escaped cells; ``numeric`` columns are right-aligned."""
    right = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td class='num'>{c}</td>" if i in right else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>"
    )


class Links:
    """Where the page links to: itself under ``prefix``, Airflow's UI under ``airflow``.

    :param run_url: the Airflow page of a DAG run, from (dag_id, run_id).
    """

    def __init__(
        self, prefix: str, run_url: Callable[[str, str], str], dag_url: Callable[[str], str]
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.run_url = run_url
        self.dag_url = dag_url

    def pipeline(self, name: str) -> str:
        return f"{self.prefix}/pipelines/{quote(name)}"


def _section_error(overview: Overview, section: str) -> str:
    error = overview.errors.get(section)
    return f"<p class='error'>{_e(section)}: {_e(error)}</p>" if error else ""


def index_page(overviews: list[Overview], links: Links) -> str:
    rows = []
    for o in overviews:
        last = o.runs[0] if o.runs else None
        rows.append(
            [
                f"<a href='{_e(links.pipeline(o.pipeline))}'>{_e(o.pipeline)}</a>",
                ", ".join(
                    f"<a target='_top' href='{_e(links.dag_url(d))}'>{_e(d)}</a>" for d in o.dags.values()
                ),
                str(len(o.runs)),
                f"{badge(last.state)} {_e(last.dag_id)}" if last else "<span class='muted'>no run yet</span>",
                money(o.cost_usd),
                _e(o.registry.champion.version if o.registry and o.registry.champion else ""),
            ]
        )
    body = "<h1>Deep learning pipelines</h1>"
    body += "<p class='muted'>Runs, jobs and their estimated SageMaker cost, tuning, drift and the model registry, per pipeline.</p>"
    if rows:
        body += table(
            ["pipeline", "DAGs", "runs", "last run", "estimated cost", "champion version"],
            rows,
            numeric=(2, 4),
        )
    else:
        body += "<p class='muted'>No pipeline DAG (dl_pipeline_*, dl_drift_monitor_*, dl_retrain_*) is loaded yet.</p>"
    return document("Deep learning pipelines", body)


def pipeline_page(o: Overview, links: Links) -> str:
    champion = o.registry.champion if o.registry else None
    cards = [
        ("runs", str(len(o.runs))),
        ("jobs", str(sum(len(r.jobs) for r in o.runs))),
        ("estimated cost", money(o.cost_usd) or "-"),
        ("champion", f"v{champion.version}" if champion else "-"),
        ("last drift check", ("drifted" if o.drift.drifted else "stable") if o.drift else "-"),
    ]
    body = f"<p><a href='{_e(links.prefix)}/'>All pipelines</a></p><h1>Pipeline {_e(o.pipeline)}</h1>"
    body += (
        "<div class='cards'>"
        + "".join(
            f"<div class='card'><span class='muted'>{_e(k)}</span><b>{_e(v)}</b></div>" for k, v in cards
        )
        + "</div>"
    )
    body += "<h2 id='runs'>Runs</h2>" + _section_error(o, "runs") + _runs(o.runs, links)
    body += (
        "<h2 id='leaderboard'>Tuning leaderboard</h2>"
        + _section_error(o, "leaderboard")
        + _leaderboard(o.leaderboard)
    )
    body += "<h2 id='drift'>Drift</h2>" + _section_error(o, "drift") + _drift(o.drift)
    body += "<h2 id='registry'>Model registry</h2>" + _section_error(o, "registry") + _registry(o.registry)
    body += (
        "<p class='muted'>Costs are estimates: the on-demand list price of the instances (us-east-1) times "
        "the time SageMaker bills (training) or the job ran; on the local backend, what the same jobs "
        "would cost on SageMaker.</p>"
    )
    return document(f"Pipeline {o.pipeline}", body)


def _runs(runs: list[Run], links: Links) -> str:
    if not runs:
        return "<p class='muted'>No run yet.</p>"
    out = []
    for run in runs:
        out.append(
            f"<h3><a target='_top' href='{_e(links.run_url(run.dag_id, run.run_id))}'>{_e(run.dag_id)} / {_e(run.run_id)}</a> "
            f"{badge(run.state)}</h3>"
            f"<p class='muted'>started {_e(when(run.start))}; {_e(duration(run.seconds)) or 'running'}; "
            f"{len(run.tasks)} task(s); estimated cost {_e(money(run.cost_usd) or '-')}</p>"
        )
        if run.jobs:
            out.append(
                table(
                    ["task", "kind", "job", "status", "started", "duration", "estimated cost", "basis"],
                    (
                        [
                            _e(j.task_id),
                            _e(j.kind),
                            # The anchor the local backend's job links open (links.console).
                            f"<span id='job-{_e(j.name)}'>{_e(j.name)}</span>",
                            badge(j.status)
                            + (f"<br><span class='muted'>{_e(j.failure)}</span>" if j.failure else ""),
                            _e(when(j.start)),
                            _e(duration(j.seconds)),
                            _e(money(j.cost.usd)),
                            f"<span class='muted'>{_e(j.cost.basis)}</span>",
                        ]
                        for j in run.jobs
                    ),
                    numeric=(5, 6),
                )
            )
        else:
            out.append("<p class='muted'>No SageMaker job in this run (yet).</p>")
    return "".join(out)


def _leaderboard(board: Leaderboard | None) -> str:
    if board is None:
        return "<p class='muted'>No tuning job yet.</p>"
    head = f"<p>{_e(board.tuning_job)}: objective <b>{_e(board.objective)}</b> ({_e(board.direction)}), best first</p>"
    rows = (
        [
            str(t.rank),
            _e(t.name),
            badge(t.status),
            number(t.objective),
            _e(", ".join(f"{k}={v}" for k, v in sorted(t.hyperparameters.items()))),
            _e(duration(t.seconds)),
        ]
        for t in board.trials
    )
    return head + table(
        ["rank", "training job", "status", "objective", "hyperparameters", "duration"],
        rows,
        numeric=(0, 3, 5),
    )


def _drift(report: DriftReport | None) -> str:
    if report is None:
        return "<p class='muted'>No drift check has written a report yet.</p>"
    drifted = [f for f in report.features if f.status == "drifted"]
    summary = table(
        ["drift run", "rows", "features drifted", "model version", "report"],
        [
            [
                _e(report.run_id),
                str(report.rows),
                f"{badge('drifted' if report.drifted else 'stable')} {len(drifted)} of {len(report.features)}",
                _e(report.model_version or ""),
                _e(report.uri),
            ]
        ],
        numeric=(1,),
    )
    rows = (
        [
            _e(f.name),
            badge(f.status),
            number(f.severity, 3),
            number(f.scores.get("psi")),
            number(f.scores.get("ks_statistic")),
            number(f.scores.get("wasserstein_normed")),
            _e("; ".join(f.reasons)),
        ]
        for f in report.features
    )
    features = table(
        ["feature", "status", "severity", "PSI", "KS", "Wasserstein (sd)", "why"], rows, numeric=(2, 3, 4, 5)
    )
    note = "<p class='muted'>Severity: the largest score / threshold (1 = at a threshold); drifted features first.</p>"
    return summary + "<h3>Features by severity</h3>" + note + features


def _registry(registry: Registry | None) -> str:
    if registry is None:
        return "<p class='muted'>No model registered yet.</p>"
    champion = registry.champion
    head = (
        f"<p>Model package group <b>{_e(registry.group)}</b>; champion: "
        + (
            f"<span class='badge champion'>version {champion.version}</span>"
            if champion
            else "none approved yet"
        )
        + "</p>"
    )
    rows = (
        [
            str(v.version) + (" <span class='badge champion'>champion</span>" if v.champion else ""),
            badge(v.approval),
            badge(v.status),
            _e(when(v.created)),
            _e(v.approval_description or v.description),
            _e(", ".join(f"{k}={val}" for k, val in sorted(v.metrics.items()))),
        ]
        for v in registry.versions
    )
    out = head + table(
        ["version", "approval", "status", "created", "decision / description", "metadata"], rows, numeric=(0,)
    )
    if registry.decisions:
        out += "<h3>Champion-challenger decisions</h3>" + table(
            ["run", "decision", "reason"],
            (
                [_e(d.get("run_id")), badge(d.get("decision")), _e(d.get("reason"))]
                for d in registry.decisions
            ),
        )
    return out
