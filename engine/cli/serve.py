"""`engine serve FILE`: run a pipeline long, fed by its webhook sources over HTTP."""

from __future__ import annotations

import math
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

from engine.cli.environment import (
    current_environ,
    current_settings,
    env_file_option,
    workspace_option,
)
from engine.cli.telemetry import telemetry_session
from engine.errors import ConfigError, EngineError
from engine.pipeline import compile_file
from engine.runtime.history import state_of
from engine.runtime.lease import RunLease, describe_holder
from engine.runtime.plan import Plan
from engine.state import Lease
from engine.workspace import workspace_for

if TYPE_CHECKING:
    from engine.serve.app import EngineServer
    from engine.serve.schedule import ScheduledRuns

__all__ = ["serve"]


@click.command("serve")
@env_file_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a connection may take to send a request's headers before it is closed.",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a request may take to send its body before it gets 408.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="When another run of this pipeline holds its lease, wait for it to end instead of "
    "failing.",
)
@click.option("--no-audit", is_flag=True, help="Serve without the audit trail.")
@click.option("--verbose", "-v", is_flag=True, help="Log every request.")
@workspace_option
def serve(
    files: tuple[str, ...],
    host: str,
    port: int,
    header_timeout: float,
    body_timeout: float,
    wait: bool,
    no_audit: bool,
    verbose: bool,
) -> None:
    """Serve FILES: webhook sources at their paths, /livez, /readyz, /healthz, /metrics and
    every [schedule].

    At most one of FILES may be without a [schedule]: it runs for as long as serve does, fed
    by its webhook sources. Each scheduled pipeline runs at its fire times, each fire time
    once across every `engine serve` sharing its state store.

    Runs until SIGINT/SIGTERM, then stops taking requests, answers those in flight and lets
    the pipeline (and any scheduled run) deliver what it holds. Exit 0 when the pipeline ended
    cleanly (a signal is a clean end), 1 when it failed or another run of it holds its lease
    (unless --wait), 78 when a file is invalid.
    """
    from engine.components.extras import install_command, missing_extras
    from engine.runtime.observer import NullObserver

    plans: list[Plan] = []
    for file in files:
        try:
            plans.append(compile_file(file, env=current_environ()))
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(78)
    if missing_extras(["serve"]):
        click.echo(
            f"error: engine serve needs the `serve` extra: {install_command(['serve'])}", err=True
        )
        sys.exit(78)
    from engine.serve.app import EngineServer
    from engine.serve.schedule import ScheduledRuns

    env = current_settings()
    scheduled = [p for p in plans if p.spec.schedule is not None]
    served = [p for p in plans if p.spec.schedule is None]
    if len(served) > 1:
        names = ", ".join(str(p.spec.file) for p in served)
        click.echo(
            f"error: serve runs one pipeline without a [schedule] at a time ({names}): "
            "give the others a [schedule], or serve them apart",
            err=True,
        )
        sys.exit(2)
    schedules = ScheduledRuns(scheduled, env, audit=not no_audit) if scheduled else None
    if not served:
        assert schedules is not None
        click.echo(
            f"scheduling {', '.join(p.name for p in scheduled)} (/healthz on http://{host}:{port})",
            err=True,
        )
        sys.exit(anyio.run(schedules.serve, host, port, header_timeout))
    plan = served[0]
    workspace = workspace_for(plan.spec.file, env)
    lease = _take_lease(plan, workspace, wait)
    try:
        with lease, telemetry_session(plan.name) as telemetry:
            server = EngineServer(
                plan,
                workspace=workspace,
                observer=NullObserver() if no_audit else None,
                run_id=lease.run_id,
                header_timeout=header_timeout,
                body_timeout=body_timeout,
                settings=env,
                telemetry=telemetry.hook,
            )
            if schedules is not None:  # scheduled runs count in the served pipeline's /metrics
                schedules.telemetry = server.telemetry
            paths = ", ".join(r.config.path for r in server.routes.values()) or "no webhook sources"
            click.echo(
                f"serving {plan.name} on http://{host}:{port} "
                f"({paths}; /livez, /readyz, /healthz, /metrics)",
                err=True,
            )
            code = anyio.run(_serve, server, host, port, verbose, schedules)
    except EngineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


async def _serve(
    server: EngineServer, host: str, port: int, verbose: bool, schedules: ScheduledRuns | None
) -> int:
    async with anyio.create_task_group() as tg:
        if schedules is not None:
            tg.start_soon(schedules.run)
        summary = await server.serve(
            host, port, log_level="info" if verbose else "warning", handle_signals=True
        )
        if schedules is not None:
            schedules.stop()
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)
        return 1
    # stopped by a signal is how a served pipeline ends: not a failure
    return 0 if summary.ok or summary.interrupted else 1


def _take_lease(plan: Plan, workspace: Path, wait: bool) -> RunLease:
    """The pipeline's run lease (one run per pipeline per state store); without ``wait``
    exit 1 naming the run that holds it, with it wait (a signal meanwhile ends with 0)."""
    lease = RunLease(state_of(plan, workspace), plan.name, uuid.uuid4().hex[:12])
    try:
        if wait:
            _wait_for(lease)
            return lease
        holder = lease.try_acquire()
    except EngineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if holder is not None:
        lease.close()
        click.echo(
            f"error: pipeline {plan.name!r} is already running: {describe_holder(holder)} "
            f"holds its lease in {lease.where}. Stop that run, or serve with --wait",
            err=True,
        )
        sys.exit(1)
    return lease


def _wait_for(lease: RunLease) -> None:
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def waiting(holder: Lease) -> None:
        click.echo(f"waiting for {describe_holder(holder)} to end...", err=True)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        lease.acquire(math.inf, on_wait=waiting)
    except KeyboardInterrupt:
        lease.release()
        click.echo("stopped before the lease was free", err=True)
        sys.exit(0)
    finally:
        signal.signal(signal.SIGTERM, previous)
