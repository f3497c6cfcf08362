"""``engine audit``: verify, prove, query, stats, report and export the trail; rotate its keys.

Every command reads the store at ``--store`` (a SQLAlchemy URL; ``verify`` also takes a
``.jsonl`` export), by default the SQLite store in the workspace (``$ENGINE_HOME`` or
``./.engine``). Reading a store is itself recorded, on the ``audit-access`` chain, and so
is a key rotation.
Exit codes: 0 ok, 1 tampered or failed, 2 usage error; ``verify`` exits 3 when it cannot
verify (no trail, no key, or events signed with keys it was not given).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson
from rich.markup import escape
from rich.table import Table

from engine.audit.system import stored_to_event
from engine.cli import audit_compliance, audit_keys, audit_proof
from engine.cli.audit_common import (
    _F,
    _KEY_HINT,
    EXIT_INTACT,
    EXIT_TAMPERED,
    EXIT_UNVERIFIABLE,
    _checkpoint_dir,
    _consoles,
    _fail,
    _format_option,
    _keyring,
    _open_store,
    _record_access,
    _running_run_ids,
    _store_options,
    _when,
    _workspace,
)
from engine.cli.output import print_table
from engine.compliance.runs import OpenRun, open_runs
from engine.errors import EngineError
from engine.ledger.canonical import canonical_json
from engine.ledger.errors import AuditKeyError
from engine.ledger.events import AuditCategory, AuditLevel
from engine.ledger.keys import load_public_keys
from engine.ledger.store import EventFilter, StoredEvent
from engine.ledger.verify import VerifyReport, VerifyStatus, verify_jsonl, verify_store

__all__ = ["EXIT_INTACT", "EXIT_TAMPERED", "EXIT_UNVERIFIABLE", "audit"]


@click.group("audit")
def audit() -> None:
    """Verify, prove, query and export the signed audit trail, and rotate its keys.

    Proofs are JSON files that `verify-proof` checks offline, with no store and no HMAC
    key: `prove EVENT_ID` shows that an event is in a signed checkpoint's tree, and
    `prove-consistency OLD [--to NEW]` that an older signed checkpoint of a chain is a
    prefix of a newer one, so the chain only grew and nothing was rewritten.
    """


# --- verify ---------------------------------------------------------------------


def _print_runs(runs: Sequence[OpenRun]) -> None:
    abandoned = [r for r in runs if not r.running]
    running = [r for r in runs if r.running]
    if abandoned:
        _consoles.out.print(
            f"abandoned: {len(abandoned)} run(s) started and never finished", markup=False
        )
        for run in abandoned:
            _consoles.out.print(f"  - {run.describe()}", markup=False)
    for run in running:
        _consoles.out.print(f"running: {run.describe()}", markup=False)


def _print_report(report: VerifyReport, runs: Sequence[OpenRun]) -> None:
    chains = len(report.chains)
    status = report.status
    if status is VerifyStatus.INTACT:
        _consoles.out.print(
            f"[green]intact[/green]: {report.events} events in {chains} chain(s), "
            f"{report.checkpoints} signed checkpoint(s) checked",
            markup=True,
        )
        _print_runs(runs)
        return
    if status is VerifyStatus.UNVERIFIABLE:
        if not report.chains:
            why = "the store holds no audit trail"
        else:
            why = (
                f"events are signed with key(s) {', '.join(report.unknown_keys)}, which were "
                f"not supplied; {_KEY_HINT}"
            )
        _consoles.out.print(f"[yellow]cannot verify[/yellow]: {escape(why)}", markup=True)
        first = report.first_broken
        if first is not None:
            _consoles.out.print(f"first: {first.producer}: {first.message}", markup=False)
        _print_runs(runs)
        return
    _consoles.out.print(
        "[red bold]TAMPERED[/red bold]: the audit trail does not verify", markup=True
    )
    first = report.first_broken
    if first is not None:
        where = f" in {first.producer}" if first.producer else ""
        _consoles.out.print(f"first broken{where}: {first.message}", markup=False)
    for chain in report.chains:
        if chain.missing:
            numbers = ", ".join(str(n) for n in chain.missing[:20])
            more = f" (+{len(chain.missing) - 20} more)" if len(chain.missing) > 20 else ""
            _consoles.out.print(
                f"{chain.producer}: missing sequence numbers {numbers}{more}", markup=False
            )
        _consoles.out.print(
            f"{chain.producer}: tail truncated against checkpoint: "
            f"{'yes' if chain.truncated else 'no'}",
            markup=False,
        )
    for problem in report.all_problems():
        prefix = f"{problem.producer}: " if problem.producer else ""
        _consoles.out.print(f"  - [{problem.kind.value}] {prefix}{problem.message}", markup=False)
    hidden = sum(c.suppressed for c in report.chains)
    if hidden:
        _consoles.out.print(f"  ... and {hidden} more problem(s)", markup=False)


@audit.command("verify")
@_store_options
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Checkpoint file or folder (repeatable); default: the workspace's checkpoints/ "
    "(for a .jsonl export: none).",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY|@FILE",
    help="HMAC key to verify with (repeatable; old keys too); default: AUDIT_SECRET_KEY "
    "and the workspace keyring.",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ed25519 public key of the checkpoints (base64 or PEM); the workspace's is trusted.",
)
@_format_option
def verify_cmd(
    store_url: str | None,
    workspace: Path | None,
    checkpoints: tuple[Path, ...],
    keys: tuple[str, ...],
    public_keys: tuple[Path, ...],
    fmt: str,
) -> None:
    """Check every MAC, link and checkpoint; list runs that never finished.

    Exit 0 intact, 1 tampered (naming the first broken event), 3 cannot verify (no trail,
    no key, or events signed with keys not supplied).
    """
    ws = _workspace(workspace)
    runs: list[OpenRun] = []
    try:
        ring = _keyring(ws, keys)
        pubs = load_public_keys(ws, files=public_keys)
        is_export = store_url is not None and store_url.endswith(".jsonl")
        if is_export and store_url is not None:
            # An export is a snapshot: later checkpoints would call it truncated, so only
            # the checkpoints named on the command line apply.
            report = verify_jsonl(
                Path(store_url), ring, checkpoint_paths=checkpoints, public_keys=pubs
            )
        else:
            with _open_store(store_url, ws) as store:
                report = verify_store(
                    store,
                    ring,
                    checkpoint_paths=list(checkpoints) or [_checkpoint_dir(ws)],
                    public_keys=pubs,
                )
                runs = open_runs(store, _running_run_ids(ws))
    except (EngineError, AuditKeyError) as exc:
        _cannot_verify(str(exc), fmt)
    status = report.status
    if fmt == "json":
        data = report.to_dict()
        data["abandoned_runs"] = [r.to_dict() for r in runs if not r.running]
        data["running_runs"] = [r.to_dict() for r in runs if r.running]
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
    else:
        _print_report(report, runs)
    if not is_export:
        try:
            _record_access(
                store_url,
                ws,
                "verify",
                {"ok": report.ok, "status": status.value, "events": report.events},
            )
        except EngineError as exc:
            _consoles.err.print(f"error: cannot record this read: {exc}", markup=False)
            if status is VerifyStatus.INTACT:
                sys.exit(EXIT_UNVERIFIABLE)
    sys.exit(
        {
            VerifyStatus.INTACT: EXIT_INTACT,
            VerifyStatus.TAMPERED: EXIT_TAMPERED,
            VerifyStatus.UNVERIFIABLE: EXIT_UNVERIFIABLE,
        }[status]
    )


def _cannot_verify(reason: str, fmt: str) -> NoReturn:
    """Exit 3: verification could not be done (no store, no key...), which is no verdict."""
    if fmt == "json":
        data = {"ok": False, "status": VerifyStatus.UNVERIFIABLE.value, "error": reason}
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
    else:
        _consoles.out.print(f"[yellow]cannot verify[/yellow]: {escape(reason)}", markup=True)
    sys.exit(EXIT_UNVERIFIABLE)


# --- query / stats / export --------------------------------------------------------


def _filter_options(func: _F) -> _F:
    options = [
        click.option("--since", default=None, help="From this time (ISO 8601, or 24h, 7d ago)."),
        click.option("--until", default=None, help="Before this time (ISO 8601, or 1h ago)."),
        click.option(
            "--level",
            "levels",
            multiple=True,
            type=click.Choice([m.value for m in AuditLevel], case_sensitive=False),
            help="Only events of this level (repeatable).",
        ),
        click.option(
            "--category",
            "categories",
            multiple=True,
            type=click.Choice([m.value for m in AuditCategory], case_sensitive=False),
            help="Only events of this category (repeatable).",
        ),
        click.option("--pipeline", default=None, help="Only events of this pipeline."),
        click.option("--run", "run_id", default=None, help="Run id."),
        click.option("--user", "user_id", default=None, help="Only events by this user."),
        click.option(
            "--action", default=None, help="Only events of this action, e.g. run_started."
        ),
        click.option("--producer", default=None, help="Chain, e.g. pipeline:inventory-sync."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _event_filter(kwargs: dict[str, Any]) -> EventFilter:
    return EventFilter(
        since=_when(kwargs.get("since")),
        until=_when(kwargs.get("until")),
        levels=[v.upper() for v in kwargs.get("levels", ())],
        categories=[v.upper() for v in kwargs.get("categories", ())],
        pipeline=kwargs.get("pipeline"),
        run_id=kwargs.get("run_id"),
        user_id=kwargs.get("user_id"),
        action=kwargs.get("action"),
        producer=kwargs.get("producer"),
    )


def _filter_details(where: EventFilter) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime) else list(v) if isinstance(v, list) else v)
        for k, v in where.__dict__.items()
        if v not in (None, (), [])
    }


@audit.command("query")
@_store_options
@_filter_options
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many events (the newest).",
)
@_format_option
def query_cmd(
    store_url: str | None, workspace: Path | None, limit: int, fmt: str, **filters: Any
) -> None:
    """List events, newest first, as a table or JSON."""
    ws = _workspace(workspace)
    where = _event_filter(filters)
    try:
        with _open_store(store_url, ws) as store:
            rows = store.query(where, limit=limit)
        _record_access(
            store_url, ws, "query", {"filters": _filter_details(where), "returned": len(rows)}
        )
    except EngineError as exc:
        raise _fail(exc) from exc
    if fmt == "json":
        events = [stored_to_event(r).to_json_dict() for r in rows]
        sys.stdout.write(orjson.dumps(events).decode() + "\n")
        return
    _print_events(rows)


def _print_events(rows: list[StoredEvent]) -> None:
    events = [stored_to_event(row) for row in rows]
    print_table(
        _consoles.out,
        (
            "time (UTC)",
            "level",
            "category",
            "action",
            "pipeline",
            "stage",
            "records",
            "user",
            "event id",
        ),
        (
            (
                event.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                event.level.value,
                event.category.value,
                event.action,
                event.pipeline or "",
                event.stage or "",
                "" if event.record_count is None else str(event.record_count),
                event.user_id or "",
                event.event_id,
            )
            for event in events
        ),
        right={"records"},
        lead=4,
    )
    _consoles.out.print(f"{len(rows)} event(s)", markup=False)


@audit.command("stats")
@_store_options
@_format_option
def stats_cmd(store_url: str | None, workspace: Path | None, fmt: str) -> None:
    """Counts by level, category and chain, and the average risk score."""
    ws = _workspace(workspace)
    try:
        with _open_store(store_url, ws) as store:
            stats = store.stats()
            runs = open_runs(store, _running_run_ids(ws))
        _record_access(store_url, ws, "stats", {})
    except EngineError as exc:
        raise _fail(exc) from exc
    data = {
        "total_events": stats.total_events,
        "average_risk_score": stats.average_risk_score,
        "events_by_level": stats.events_by_level,
        "events_by_category": stats.events_by_category,
        "chains": stats.chains,
        "first_event_at": stats.first_timestamp,
        "last_event_at": stats.last_timestamp,
        "abandoned_runs": [r.to_dict() for r in runs if not r.running],
        "running_runs": [r.to_dict() for r in runs if r.running],
    }
    if fmt == "json":
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
        return
    _consoles.out.print(f"total events: {stats.total_events}", markup=False)
    _consoles.out.print(f"average risk score: {stats.average_risk_score:.3f}", markup=False)
    _consoles.out.print(
        f"from {stats.first_timestamp or '-'} to {stats.last_timestamp or '-'}", markup=False
    )
    for title, counts in (
        ("level", stats.events_by_level),
        ("category", stats.events_by_category),
        ("chain", stats.chains),
    ):
        table = Table(title=f"by {title}", title_justify="left")
        table.add_column(title)
        table.add_column("events", justify="right")
        for key, count in sorted(counts.items()):
            table.add_row(key, str(count))
        _consoles.out.print(table)
    _print_runs(runs)


@audit.command("export")
@_store_options
@_filter_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON Lines file to write; default: standard output.",
)
def export_cmd(
    store_url: str | None, workspace: Path | None, output: Path | None, **filters: Any
) -> None:
    """Write events as JSON Lines, one canonical event (with its MAC) per line.

    An unfiltered export verifies with `engine audit verify --store FILE.jsonl`.
    """
    ws = _workspace(workspace)
    where = _event_filter(filters)
    count = 0
    try:
        # Recorded first, so that an unfiltered export contains its own access event and
        # matches the checkpoint that recording it writes.
        _record_access(store_url, ws, "export", {"filters": _filter_details(where)})
        handle = output.open("wb") if output is not None else sys.stdout.buffer
        try:
            with _open_store(store_url, ws) as store:
                for row in store.iter_query(where):
                    event = orjson.loads(row.body)
                    event["mac"] = row.mac
                    handle.write(canonical_json(event) + b"\n")
                    count += 1
        finally:
            if output is not None:
                handle.close()
            else:
                handle.flush()
    except (EngineError, OSError) as exc:
        raise _fail(exc) from exc
    if output is not None:
        _consoles.err.print(f"{count} event(s) written to {output}", markup=False)


# prove, prove-consistency and verify-proof live in engine.cli.audit_proof;
# report, explain and approve in engine.cli.audit_compliance; rotate-key in audit_keys.
audit_proof.register(audit)
audit_compliance.register(audit)
audit_keys.register(audit)
