"""Render a compliance report as JSON, Markdown or one self-contained HTML file."""

from __future__ import annotations

from html import escape
from typing import Any

import orjson

from engine.compliance.reports.build import ComplianceReport
from engine.compliance.reports.charts import bar_chart, column_chart

__all__ = ["FORMATS", "render", "to_html", "to_json", "to_markdown"]

FORMATS = ("json", "md", "html")
_BANDS = ("minimal", "low", "medium", "high", "critical")
_BAND_COLORS = ("#94a3b8", "#16a34a", "#ca8a04", "#ea580c", "#dc2626")
_STATUS = {"pass": "PASS", "fail": "FAIL", "remediated": "REMEDIATED"}


def to_json(report: ComplianceReport) -> str:
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: ComplianceReport) -> str:
    d = report.to_dict()
    out = [
        f"# Compliance report {report.report_id}",
        "",
        f"- Period: {d['start_date']} to {d['end_date']}",
        f"- Standards: {', '.join(d['standards']) or 'all enabled'}",
        f"- Total events: {report.total_events}",
        f"- Chain verification: {_verification_line(report)}",
        "",
        "## Rules",
        "",
        "| Status | Standard | Clause | Rule | Hits | Evidence (event ids) | Reason |",
        "|---|---|---|---|---:|---|---|",
    ]
    for r in report.rules:
        evidence = ", ".join(r.evidence[:5]) + (" …" if len(r.evidence) > 5 else "")
        out.append(
            f"| {_STATUS[r.status]} | {r.standard} | {_md_cell(r.clause or '')} | "
            f"{_md_cell(r.rule_id)} | {r.hits} | {evidence} | "
            f"{_md_cell(r.reasons[0] if r.reasons else '')} |"
        )
    risk = report.risk_analysis
    out += [
        "",
        "## Risk",
        "",
        f"- Average {risk['average_risk_score']:.3f}, max {risk['max_risk_score']:.3f}",
        f"- By band: {risk['by_band']}",
        f"- Aggregates ({risk['aggregate_formula']}): by actor {risk['by_actor']}; "
        f"by pipeline {risk['by_pipeline']}",
        "",
        "## Events",
        "",
        f"- By level: {report.events_by_level}",
        f"- By category: {report.events_by_category}",
        "",
        "## Retention",
        "",
        f"- {report.retention or 'not assessed'}",
        "",
        "## Recommendations",
        "",
        *[f"- {line}" for line in report.recommendations or ["None."]],
        "",
    ]
    return "\n".join(out)


def _verification_line(report: ComplianceReport) -> str:
    v = report.verification
    if v is None:
        return "not run"
    state = "OK" if v.get("ok") else "FAILED"
    return (
        f"{state} ({v.get('events')} events, {v.get('chains')} chains, "
        f"{v.get('checkpoints')} checkpoints)"
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#0f172a}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
.meta{color:#475569;font-size:13px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:20px}.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid #e2e8f0;border-radius:8px;padding:8px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid #e2e8f0;padding:5px 6px;text-align:left;vertical-align:top}
th{background:#f8fafc}.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}
.remediated{color:#b45309;font-weight:600}code{font-size:11.5px;word-break:break-all}
.ok{color:#15803d}.bad{color:#b91c1c}
"""


def to_html(report: ComplianceReport) -> str:
    """One HTML file: inline CSS and inline SVG charts; no script, no external resource."""
    d = report.to_dict()
    risk = report.risk_analysis
    bands = risk.get("by_band", {})
    over_time = column_chart("Events over time (per day)", list(report.events_by_day.items()))
    distribution = column_chart(
        "Risk distribution (events per band)",
        [(b, float(bands.get(b, 0))) for b in _BANDS],
        colors=_BAND_COLORS,
    )
    violations = bar_chart(
        "Findings by rule",
        sorted(((r.rule_id, float(r.hits)) for r in report.rules if r.hits), key=lambda p: -p[1]),
    )
    v = report.verification or {}
    verified = (
        '<span class="ok">verified</span>' if v.get("ok") else '<span class="bad">FAILED</span>'
    )
    rows = []
    for r in report.rules:
        evidence = " ".join(f"<code>{escape(e)}</code>" for e in r.evidence[:10])
        if len(r.evidence) > 10:
            evidence += f" … ({len(r.evidence)} listed)"
        rows.append(
            f'<tr><td class="{r.status}">{_STATUS[r.status]}</td><td>{escape(r.standard)}</td>'
            f"<td>{escape(r.clause or '')}</td><td>{escape(r.rule_id)}<br>"
            f"<small>{escape(r.name)}</small></td><td>{r.hits}</td><td>{evidence}</td>"
            f"<td>{escape('; '.join(r.reasons))}</td></tr>"
        )
    top = "".join(
        f"<tr><td><code>{escape(t['event_id'])}</code></td><td>{escape(t['action'])}</td>"
        f"<td>{t['risk_score']:.3f}</td></tr>"
        for t in risk.get("top_events", [])
    )
    actors = "".join(
        f"<tr><td>{escape(k)}</td><td>{val:.3f}</td></tr>"
        for k, val in risk.get("by_actor", {}).items()
    )
    recs = "".join(f"<li>{escape(line)}</li>" for line in report.recommendations)
    conflicts = "".join(f"<li>{escape(c)}</li>" for c in report.retention.get("conflicts", []))
    failing = sum(1 for r in report.rules if r.status == "fail")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Compliance report {escape(report.report_id)}</title>
<style>{_CSS}</style></head><body>
<h1>Compliance report</h1>
<div class="meta">{escape(report.report_id)} · {escape(d["start_date"])} to
{escape(d["end_date"])} · standards: {escape(", ".join(d["standards"]) or "all enabled")}</div>
<div class="cards">
<div class="card">Events<b>{report.total_events}</b></div>
<div class="card">Rules failing<b>{failing} / {len(report.rules)}</b></div>
<div class="card">Average risk<b>{risk["average_risk_score"]:.3f}</b></div>
<div class="card">Max risk<b>{risk["max_risk_score"]:.3f}</b></div>
<div class="card">Trail<b>{verified}</b>{v.get("events", 0)} events, {v.get("checkpoints", 0)}
checkpoints</div>
</div>
<div class="charts"><div class="chart">{over_time}</div><div class="chart">{distribution}</div>
<div class="chart">{violations}</div></div>
<h2>Rules</h2>
<table><tr><th>Status</th><th>Standard</th><th>Clause</th><th>Rule</th><th>Hits</th>
<th>Evidence (event ids)</th><th>Reasons</th></tr>{"".join(rows)}</table>
<h2>Highest risk events</h2>
<table><tr><th>Event</th><th>Action</th><th>Risk</th></tr>{top}</table>
<h2>Risk by actor</h2>
<p class="meta">{escape(str(risk.get("aggregate_formula", "")))}</p>
<table><tr><th>Actor</th><th>Aggregate risk</th></tr>{actors}</table>
<h2>Retention</h2><ul>{conflicts or "<li>No conflicts.</li>"}</ul>
<h2>Recommendations</h2><ul>{recs or "<li>None.</li>"}</ul>
</body></html>
"""


def render(report: ComplianceReport, fmt: str) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r} (valid: {', '.join(FORMATS)})")
