"""`engine worker` and `engine run --distributed`: partitions through RabbitMQ (Dramatiq)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.cli.environment import current_settings
from engine.cli.output import err_console
from engine.runtime.plan import Plan
from engine.settings import EngineSettings

__all__ = ["run_distributed", "worker_cmd"]

DEFAULT_QUEUE = "engine"


@click.command("worker")
@click.option(
    "--queue",
    default=DEFAULT_QUEUE,
    show_default=True,
    help="RabbitMQ queue to take partitions from.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Partitions run at once (threads; run one worker process per core).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Retries of a failed partition before it goes to the dead-letter queue.",
)
def worker_cmd(queue: str, concurrency: int, max_retries: int) -> None:
    """Run partitions of distributed runs from RabbitMQ until SIGTERM or SIGINT.

    Takes them from ENGINE_BROKER_URL; on a signal, finishes the partitions in flight first.
    A partition is acknowledged only once its sinks are durable and its audit events written;
    a worker that dies leaves it to another."""
    require_distributed()
    from engine.partitions.broker import run_worker

    sys.exit(
        run_worker(
            current_settings(), queue=queue, concurrency=concurrency, max_retries=max_retries
        )
    )


def require_distributed() -> None:
    """Exit 78 naming the extra when Dramatiq is not installed."""
    from engine.components.extras import install_command, missing_extras

    if missing_extras(["distributed"]):
        err_console.print(
            "error: distributed runs need the `distributed` extra: "
            + install_command(["distributed"]),
            markup=False,
        )
        sys.exit(78)


def run_distributed(
    plan: Plan,
    *,
    workspace: Path,
    run_id: str,
    settings: EngineSettings,
    queue: str,
    audit: bool,
) -> None:
    """Plan and send the partitions of a run (the caller holds the pipeline's lease)."""
    require_distributed()
    from engine.partitions.broker import make_broker
    from engine.partitions.distributed import send_run

    broker = make_broker(settings)
    try:
        specs = send_run(
            plan,
            broker=broker,
            queue=queue,
            workspace=workspace,
            run_id=run_id,
            settings=settings,
            audit=audit,
        )
    finally:
        broker.close()
    err_console.print(f"run {run_id}: {len(specs)} partitions sent to queue {queue}", markup=False)


def report_distributed(plan: Plan, workspace: Path, run_id: str, *, as_json: bool) -> int:
    """Wait for a distributed run to end; print its record; the exit code."""
    from engine.partitions.distributed import wait_for_run

    record = wait_for_run(plan, workspace, run_id)
    if as_json:
        click.echo(json.dumps(record.to_dict(), indent=2, default=str))
    else:
        err_console.print(
            f"run {run_id}: {record.outcome} in {record.duration_s or 0:.2f}s: "
            f"{record.records_in} read, {record.records_out} written, {record.rejected} rejected"
            + (f"; error: {record.error}" if record.error else ""),
            markup=False,
        )
    return 0 if record.outcome == "success" else 1
