"""`engine runs` (the run records) and `engine state` (the saved cursors), read from the
pipeline's state store: the one its `[state]` table names, else the workspace's."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from engine.cli.environment import (
    current_environ,
    current_settings,
    env_file_option,
    fail_config,
    workspace_option,
)
from engine.cli.output import err_console, format_option, out_console, print_table
from engine.errors import ConfigError, EngineError
from engine.runtime.history import STATE_FILE, state_of
from engine.runtime.lease import describe_holder, live_leases
from engine.state import Cursor, RunRecord, StateStore
from engine.workspace import workspace_for

__all__ = ["runs", "state"]

_FORMAT = format_option(help="Output format: text (a table) or json (stdout).")


class _DefaultGroup(click.Group):
    """A group whose first argument, when it names no subcommand, goes to ``default``."""

    default = "list"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@contextmanager
def _store_of(
    file: str | None, *, read_only: bool, component: str | None = None
) -> Iterator[tuple[StateStore, str | None]]:
    """The state store of the pipeline in ``file`` (and its name), else the workspace's.
    ``component``, when given, must be one of the file's."""
    settings = current_settings()
    if file is None:
        store = StateStore(workspace_for(None, settings) / STATE_FILE, read_only=read_only)
        name = None
    else:
        from engine.pipeline import compile_file

        try:
            plan = compile_file(file, env=current_environ())
        except ConfigError as exc:
            fail_config(exc)
        if component is not None and component not in plan.nodes:
            raise click.BadParameter(
                f"{component!r} is not a component of {file}; "
                f"components: {', '.join(sorted(plan.nodes))}",
                param_hint="COMPONENT",
            )
        store = state_of(plan, workspace_for(plan.spec.file, settings), read_only=read_only)
        name = plan.name
    try:
        yield store, name
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _when(iso: str | None, *, date: bool = True) -> str:
    if not iso:
        return "-"
    day, _, time = iso.partition("T")
    return f"{day} {time[:5]}" if date else time[:8]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _outcome(record: RunRecord, running: set[str]) -> str:
    """A record still marked running whose run holds no lease is abandoned (it crashed)."""
    if record.outcome == "running" and record.run_id not in running:
        return "abandoned"
    return record.outcome


# -- engine runs ------------------------------------------------------------------------------
@click.group("runs", cls=_DefaultGroup, invoke_without_command=False)
def runs() -> None:
    """List the runs of FILE's pipeline (or show one run) from its state store.

    `engine runs [FILE]` lists the newest runs, `engine runs show ID [FILE]` shows one."""


@runs.command("list")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--pipeline", "name", default=None, help="Only the runs of this pipeline.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N runs."
)
@_FORMAT
@workspace_option
@env_file_option
def runs_list(file: str | None, name: str | None, limit: int, fmt: str) -> None:
    """The newest runs of the pipeline in FILE (or of --pipeline NAME, or of every pipeline
    of the workspace): id, start, end, outcome, records, dead letters, duration."""
    with _store_of(file, read_only=True) as (store, pipeline):
        found = store.runs(pipeline or name, limit=limit)
        running = {lease.run_id for lease in live_leases(store)}
    records = [{**r.to_dict(), "outcome": _outcome(r, running)} for r in found]
    if fmt == "json":
        sys.stdout.write(json.dumps(records) + "\n")
        return
    if not records:
        err_console.print(f"no runs recorded in {store.where}", markup=False)
        return
    header = ("run", "started (UTC)", "ended", "outcome", "in", "out", "rej", "dl", "time")
    rows = [
        (
            r["run_id"],
            _when(r["started"]),
            _when(r["ended"], date=False)[:5],
            r["outcome"],
            str(r["records_in"]),
            str(r["records_out"]),
            str(r["rejected"]),
            str(r["dead_letters"]),
            _duration(r["duration_s"]),
        )
        for r in records
    ]
    print_table(out_console, header, rows, right={"in", "out", "rej", "dl", "time"})


@runs.command("show")
@click.argument("run_id", metavar="ID")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@_FORMAT
@workspace_option
@env_file_option
def runs_show(run_id: str, file: str | None, fmt: str) -> None:
    """One run in full: its record, per-component counts and first dead letters. ID may be
    a unique prefix."""
    with _store_of(file, read_only=True) as (store, _):
        record = store.run(run_id)
        if record is None:
            raise click.ClickException(f"no run {run_id!r} in {store.where}")
        running = {lease.run_id for lease in live_leases(store)}
        letters = store.dead_letters(record.run_id, limit=20)
    data = {**record.to_dict(), "outcome": _outcome(record, running)}
    data["dead_letter_rows"] = [vars(row) for row in letters]
    if fmt == "json":
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        return
    for key in (
        "run_id",
        "pipeline",
        "outcome",
        "started",
        "ended",
        "duration_s",
        "host",
        "attempt",
        "records_in",
        "records_out",
        "rejected",
        "dead_letters",
        "error",
    ):
        if data[key] is not None:
            out_console.print(f"{key + ':':13} {data[key]}", markup=False, soft_wrap=True)
    details = record.details
    for key in ("pipeline_file", "dead_letter_path"):
        if details.get(key):
            out_console.print(f"{key + ':':13} {details[key]}", markup=False, soft_wrap=True)
    components: dict[str, dict[str, Any]] = details.get("components") or {}
    if components:
        header = ("component", "role", "in", "out", "rejected", "retries", "errors")
        rows = [
            (
                cid,
                str(c.get("role") or ""),
                *(str(c.get(k, 0)) for k in ("records_in", "records_out", "rejected")),
                *(str(c.get(k, 0)) for k in ("retries", "errors")),
            )
            for cid, c in components.items()
        ]
        out_console.print("", markup=False)
        print_table(out_console, header, rows, right=set(header[2:]))
    for row in letters:
        where = f" ({row.location})" if row.location else ""
        out_console.print(
            f"dead letter at {row.component}: {row.reason}{where}", markup=False, soft_wrap=False
        )


# -- engine state -----------------------------------------------------------------------------
@click.group("state")
def state() -> None:
    """Show, set or reset what FILE's pipeline keeps between runs (cursors).

    Incremental sources keep their cursors here, and an interrupted run its checkpoint."""


def _print_cursors(found: Sequence[Cursor]) -> None:
    header = ("component", "key", "value", "version", "updated (UTC)")
    rows = [
        (
            c.component or "(pipeline)",
            c.key,
            json.dumps(c.value),
            str(c.version),
            _when(c.updated_at),
        )
        for c in found
    ]
    print_table(out_console, header, rows, right={"version"}, wrap={"value"})


@state.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("component", required=False)
@_FORMAT
@workspace_option
@env_file_option
def state_show(file: str, component: str | None, fmt: str) -> None:
    """The values saved for the pipeline in FILE (or one COMPONENT of it)."""
    with _store_of(file, read_only=True, component=component) as (store, pipeline):
        assert pipeline is not None
        found = store.cursors(pipeline, component)
    if fmt == "json":
        payload = {
            "pipeline": pipeline,
            "store": store.where,
            "values": [c.to_dict() for c in found],
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    if not found:
        what = f"component {component!r} of " if component else ""
        err_console.print(f"nothing saved for {what}{pipeline} in {store.where}", markup=False)
        return
    _print_cursors(found)


def _refuse_while_running(store: StateStore, pipeline: str) -> None:
    for lease in live_leases(store):
        if lease.pipeline == pipeline:
            raise click.ClickException(
                f"pipeline {pipeline!r} is running ({describe_holder(lease)}): change its "
                "state once that run has ended"
            )


@state.command("set")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("component")
@click.argument("key")
@click.argument("value")
@_FORMAT
@workspace_option
@env_file_option
def state_set(file: str, component: str, key: str, value: str, fmt: str) -> None:
    """Save VALUE (JSON, else taken as a string) under KEY for COMPONENT of the pipeline in
    FILE; e.g. `engine state set p.toml orders cursor:id 1000`."""
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    with _store_of(file, read_only=False, component=component) as (store, pipeline):
        assert pipeline is not None
        _refuse_while_running(store, pipeline)
        store.set(pipeline, component, key, parsed)
        saved = store.read(pipeline, component, key)
    assert saved is not None
    if fmt == "json":
        sys.stdout.write(json.dumps({"pipeline": pipeline, **saved.to_dict()}) + "\n")
        return
    err_console.print(
        f"{pipeline}.{component} {key} = {json.dumps(parsed)} (version {saved.version})",
        markup=False,
        soft_wrap=True,
    )


@state.command("reset")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("component", required=False)
@_FORMAT
@workspace_option
@env_file_option
def state_reset(file: str, component: str | None, fmt: str) -> None:
    """Remove every value saved for the pipeline in FILE (or one COMPONENT of it): the next
    run reads everything again. Asks nothing; prints what it removed."""
    with _store_of(file, read_only=False, component=component) as (store, pipeline):
        assert pipeline is not None
        _refuse_while_running(store, pipeline)
        removed = store.reset(pipeline, component)
    if fmt == "json":
        values = [c.to_dict() for c in removed]
        payload = {"pipeline": pipeline, "store": store.where, "removed": values}
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    if not removed:
        err_console.print(f"nothing saved for {pipeline} in {store.where}", markup=False)
        return
    err_console.print(f"removed from {store.where}:", markup=False, soft_wrap=True)
    _print_cursors(removed)
