"""``engine audit report|explain|approve``: compliance reports, risk explanations, approvals.

Registered on the ``engine audit`` group by :mod:`engine.cli.audit`.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from engine.audit.access import origin
from engine.audit.wiring import open_resources
from engine.cli.audit_common import (
    _audit_settings,
    _consoles,
    _fail,
    _open_store,
    _record_access,
    _store_options,
    _when,
    _workspace,
)
from engine.cli.environment import current_settings
from engine.cli.output import format_option
from engine.compliance.approvals import APPROVAL_ACTION
from engine.compliance.reports.render import render
from engine.compliance.reports.service import explain_event, report_from_store
from engine.errors import EngineError
from engine.ledger.events import AuditCategory, AuditLevel, ComplianceStandard

__all__ = ["approve_cmd", "explain_cmd", "register", "report_cmd"]


def register(group: click.Group) -> None:
    for command in (report_cmd, explain_cmd, approve_cmd):
        group.add_command(command)


@click.command("report")
@_store_options
@click.option(
    "--from",
    "--since",
    "since",
    default="30d",
    show_default=True,
    help="Start (ISO 8601 date or time, or a duration ago such as 30d).",
)
@click.option(
    "--to",
    "--until",
    "until",
    default=None,
    help="End, exclusive (ISO 8601 or a duration ago); default now.",
)
@click.option(
    "--standard",
    "standards",
    multiple=True,
    type=click.Choice([m.value for m in ComplianceStandard], case_sensitive=False),
    help="Compliance standard (repeatable); default: every enabled standard.",
)
@format_option("text", "json", "md", "html", help="Report format: text, json, Markdown or HTML.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="File to write; default: standard output.",
)  # fmt: skip
def report_cmd(
    store_url: str | None,
    workspace: Path | None,
    since: str,
    until: str | None,
    standards: tuple[str, ...],
    fmt: str,
    output: Path | None,
) -> None:
    """A compliance report: every rule's verdict with evidence, risk, verification."""

    ws = _workspace(workspace)
    start = _when(since) or datetime.now(UTC) - timedelta(days=30)
    end = _when(until) or datetime.now(UTC)
    chosen = [ComplianceStandard(s.upper()) for s in standards]
    try:
        _open_store(store_url, ws).close()  # a clean "no such store" error first
        resources = open_resources(
            _audit_settings(), ws, store_url=store_url, create=False, env=current_settings()
        )
        try:
            report = report_from_store(resources, start, end, chosen)
        finally:
            resources.close()
        _record_access(
            store_url,
            ws,
            "compliance_report",
            {"report_id": report.report_id, "standards": [s.value for s in report.standards]},
        )
    except EngineError as exc:
        raise _fail(exc) from exc
    text = _human(report) if fmt == "text" else render(report, fmt)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        _consoles.err.print(f"report {report.report_id} written to {output}", markup=False)
    else:
        sys.stdout.write(text)


def _human(report: Any) -> str:
    data = report.to_dict()
    risk = report.risk_analysis
    lines = [
        f"compliance report {report.report_id}",
        f"period: {data['start_date']} to {data['end_date']}",
        f"standards: {', '.join(data['standards']) or '-'}",
        f"total events: {report.total_events}",
        f"risk: average {risk['average_risk_score']:.3f}, max {risk['max_risk_score']:.3f}, "
        f"by band {risk['by_band']}",
        f"trail: {'verified' if (report.verification or {}).get('ok') else 'NOT VERIFIED'}",
    ]
    for r in report.rules:
        reason = r.reasons[0] if r.reasons else ""
        lines.append(f"  {r.status.upper():<10} {r.rule_id:<36} {r.hits:>5}  {reason}")
    lines += [f"- {line}" for line in report.recommendations]
    return "\n".join(lines) + "\n"


@click.command("explain")
@click.argument("event_id")
@functools.partial(_store_options, pipeline="option")
@format_option(help="Output format: text, or json (the score's parts and the rules).")
def explain_cmd(event_id: str, store_url: str | None, workspace: Path | None, fmt: str) -> None:
    """How an event's risk score is made up, and the compliance rules that fired on it."""

    ws = _workspace(workspace)
    try:
        with _open_store(store_url, ws) as store:
            explanation = explain_event(store, event_id)
        _record_access(store_url, ws, "explain", {"event_id": event_id})
    except EngineError as exc:
        raise _fail(exc) from exc
    if explanation is None:
        raise click.ClickException(f"no event {event_id} in the store")
    if fmt == "json":
        sys.stdout.write(orjson.dumps(explanation).decode() + "\n")
        return
    out = [
        f"event {explanation['event_id']}: {explanation['action']} "
        f"({explanation['level']}, {explanation['category']}) at {explanation['timestamp']}",
        f"risk score {explanation['score']:.3f} (stored {explanation['stored_risk_score']:.3f})"
        f" = {explanation['formula']}",
    ]
    for c in explanation["contributions"]:
        out.append(f"  {c['weight']:+.2f}  {c['code']:<22} {c['detail']}")
    for rule in explanation["rules"]:
        out.append(f"  rule {rule['rule_id']} ({rule['label']}): {rule['reason']}")
    sys.stdout.write("\n".join(out) + "\n")


@click.command("approve")
@click.argument("pipeline_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@functools.partial(_store_options, pipeline="given")
@click.option("--by", "approver", default=None, help="Who approves; default: the OS user.")
@click.option("--note", default="", help="Ticket or reason, recorded with the approval.")
@format_option(help="Output format: text, or json (file, sha256, event id).")
def approve_cmd(
    pipeline_file: Path, store_url: str | None, workspace: Path | None, approver: str | None,
    note: str, fmt: str,
) -> None:  # fmt: skip
    """Approve the current version of a pipeline file (SOX change management).

    Records a signed ``change_approved`` event with the file's SHA-256 on the
    ``approvals`` chain; runs of that exact content are then not flagged as changes.
    """

    ws = _workspace(workspace)
    sha = hashlib.sha256(pipeline_file.read_text(encoding="utf-8").encode()).hexdigest()
    user, host, ip = origin()
    try:
        resources = open_resources(
            _audit_settings(), ws, store_url=store_url, env=current_settings()
        )
        try:
            trail = resources.trail("approvals", actor="cli")
            event_id = trail.emit(
                level=AuditLevel.INFO,
                category=AuditCategory.COMPLIANCE,
                action=APPROVAL_ACTION,
                resource=str(pipeline_file),
                user_id=approver or user,
                host=host,
                ip_address=ip,
                details={"sha256": sha, "file": str(pipeline_file), "note": note},
            )
            trail.close()
        finally:
            resources.close()
    except EngineError as exc:
        raise _fail(exc) from exc
    if fmt == "json":
        approval = {"file": str(pipeline_file), "sha256": sha, "event_id": event_id}
        sys.stdout.write(orjson.dumps(approval).decode() + "\n")
        return
    click.echo(f"approved {pipeline_file} (sha256 {sha}) as event {event_id}")
