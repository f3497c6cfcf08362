"""Scheduled runs under `engine serve`: each fire time of a ``[schedule]`` runs the pipeline once.

Every scheduler sharing a state store agrees on the fire times (they are computed, not
remembered) and claims each one in the store before it runs it; the claim is an insert on a
unique key, so however many schedulers run, one of them wins a fire time and the others
move on. A run still takes the pipeline's run lease, so two fire times never run at once:

- ``missed = "skip"``: a fire time whose run cannot start (the last one is still going) is
  skipped, and a scheduler that was down runs only the newest fire time it missed;
- ``missed = "catch_up"``: such a fire time waits for the lease, and a scheduler that was
  down runs each missed fire time, oldest first (at most ``catch_up_limit``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio

from engine.model import Missed
from engine.pipeline import run
from engine.runtime.history import state_of
from engine.runtime.lease import RunLease
from engine.runtime.observer import NullObserver
from engine.runtime.plan import Plan
from engine.runtime.runner import Runner
from engine.runtime.telemetry import NULL_TELEMETRY, RunTelemetry
from engine.settings import EngineSettings
from engine.state import StateStore
from engine.workspace import workspace_for

__all__ = ["FireClaims", "Fired", "ScheduledRuns", "Scheduler"]

log = logging.getLogger("engine.schedule")

#: seconds between two looks at a held run lease, for a fire time that waits for it
_LEASE_POLL = 0.25


class FireClaims(Protocol):
    """Where fire times are claimed: the state store."""

    def claim_fire(self, pipeline: str, fire_time: datetime, holder: str) -> bool: ...

    def last_fire(self, pipeline: str) -> datetime | None: ...


@dataclass(frozen=True)
class Fired:
    """A fire time this scheduler claimed, and what became of it."""

    pipeline: str
    fire_time: datetime
    outcome: str  # "ran", "failed", "skipped"


#: runs ``plan`` for one fire time; True when the run started (its lease was free or freed)
RunFire = Callable[[Plan, datetime, bool], Awaitable[bool]]


@dataclass
class Scheduler:
    """Runs each scheduled plan at its fire times until ``stop()``."""

    plans: Sequence[Plan]
    claims: FireClaims
    run_fire: RunFire
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    fired: list[Fired] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = anyio.Event()

    def stop(self) -> None:
        """Start no new run; ``run()`` returns once the runs in flight have ended."""
        self._stop.set()

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for plan in self.plans:
                tg.start_soon(self._loop, plan)

    async def _loop(self, plan: Plan) -> None:
        schedule = plan.spec.schedule
        assert schedule is not None
        # from the newest fire time any scheduler claimed; a pipeline never scheduled
        # before starts from now
        last = await anyio.to_thread.run_sync(self.claims.last_fire, plan.name)
        cursor = last if last is not None else self.clock()
        while not self._stop.is_set():
            now = self.clock()
            due = schedule.due(cursor, now)
            if not due:
                wait = (schedule.next_fire(cursor) - now).total_seconds()
                with anyio.move_on_after(max(wait, 0.0) + 0.001):
                    await self._stop.wait()
                continue
            if schedule.missed is Missed.SKIP and len(due) > 1:
                log.warning(
                    "%s: skipping %d missed fire time(s) before %s",
                    plan.name,
                    len(due) - 1,
                    due[-1].isoformat(),
                )
                due = due[-1:]
            for fire in due:
                if self._stop.is_set():
                    return
                await self._fire(plan, fire, wait=schedule.missed is Missed.CATCH_UP)
            cursor = due[-1]

    async def _fire(self, plan: Plan, fire: datetime, *, wait: bool) -> None:
        won = await anyio.to_thread.run_sync(self.claims.claim_fire, plan.name, fire, self.holder)
        if not won:
            return  # another scheduler runs this fire time
        log.info("%s: fire time %s", plan.name, fire.isoformat())
        try:
            started = await self.run_fire(plan, fire, wait)
        except Exception as exc:  # one failed run does not stop the schedule
            log.error("%s: the run for %s failed: %s", plan.name, fire.isoformat(), exc)
            self.fired.append(Fired(plan.name, fire, "failed"))
            return
        if not started:
            log.warning(
                "%s: fire time %s skipped: the previous run still holds the lease",
                plan.name,
                fire.isoformat(),
            )
        self.fired.append(Fired(plan.name, fire, "ran" if started else "skipped"))


class ScheduledRuns:
    """The scheduled pipelines of one `engine serve`: their scheduler, the runs it starts,
    and, when serve has no webhook pipeline, a small HTTP app for health checks."""

    def __init__(self, plans: Sequence[Plan], settings: EngineSettings, *, audit: bool) -> None:
        self.plans = list(plans)
        #: metrics (and traces) of the runs: the webhook server's when serve has one, else
        #: metrics of their own, at /metrics of the small app
        self.telemetry: RunTelemetry | None = None
        self.settings = settings
        self.audit = audit
        self.runners: set[Runner] = set()
        self.stopping = False
        self.scheduler = Scheduler(self.plans, _Claims(self), self.run_fire)
        self._stores: dict[str, StateStore] = {}

    def _workspace(self, plan: Plan) -> Path:
        return workspace_for(plan.spec.file, self.settings)

    def claims_for(self, pipeline: str) -> StateStore:
        """The pipeline's state store ([state] store, shared by every scheduler), kept open."""
        if pipeline not in self._stores:
            plan = next(p for p in self.plans if p.name == pipeline)
            self._stores[pipeline] = state_of(plan, self._workspace(plan))
        return self._stores[pipeline]

    async def run_fire(self, plan: Plan, fire: datetime, wait: bool) -> bool:
        """One run of ``plan`` for ``fire``, under its run lease; False when the lease is held
        and ``wait`` is off."""
        workspace = self._workspace(plan)
        lease = RunLease(state_of(plan, workspace), plan.name, uuid.uuid4().hex[:12])
        try:
            while await anyio.to_thread.run_sync(lease.try_acquire) is not None:
                if not wait or self.stopping:
                    return False
                await anyio.sleep(_LEASE_POLL)
            try:
                summary = await run(
                    plan,
                    workspace=workspace,
                    observer=None if self.audit else NullObserver(),
                    runner_hook=self._track,
                    settings=self.settings,
                    run_id=lease.run_id,
                    trigger={"schedule": fire.isoformat()},
                    telemetry=self.telemetry or NULL_TELEMETRY,
                )
            finally:
                lease.release()
        finally:
            lease.close()
        if not summary.ok:
            log.error("%s: run %s for %s failed: %s", plan.name, lease.run_id, fire, summary.error)
        return True

    def _track(self, runner: Runner) -> None:
        self.runners.add(runner)
        if self.stopping:
            runner.stop()

    def stop(self) -> None:
        """No new fire; runs in flight stop their sources and deliver what they hold."""
        self.stopping = True
        self.scheduler.stop()
        for runner in self.runners:
            runner.stop()

    async def run(self) -> None:
        await self.scheduler.run()

    async def serve(self, host: str, port: int, header_timeout: float) -> int:
        """Schedule until SIGTERM/SIGINT, with /healthz, /livez, /readyz and /metrics on
        ``host:port``."""
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        from engine.serve.http import http_server
        from engine.telemetry.hooks import Hooks
        from engine.telemetry.metrics import EngineMetrics, exposition

        metrics = EngineMetrics()
        self.telemetry = metrics if self.telemetry is None else Hooks(metrics, self.telemetry)

        async def scrape(request: Request) -> Response:
            body, content_type = exposition(metrics.registry, request.headers.get("accept"))
            return Response(body, headers={"Content-Type": content_type})

        async def health(request: Request) -> JSONResponse:
            body = {
                "status": "stopping" if self.stopping else "ok",
                "scheduled": [p.name for p in self.plans],
                "fired": len(self.scheduler.fired),
            }
            return JSONResponse(body, 503 if self.stopping else 200)

        app = Starlette(
            routes=[
                Route("/healthz", health),
                Route("/livez", health),
                Route("/readyz", health),
                Route("/metrics", scrape),
            ],
        )
        server = http_server(app, host, port, log_level="warning", header_timeout=header_timeout)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                tg.start_soon(self._until_signal, signals, server)
                await self.run()
            server.should_exit = True
        return 0

    async def _until_signal(self, signals: Any, server: Any) -> None:
        async for _ in signals:
            self.stop()
            return


class _Claims:
    """Fire-time claims in the state store of each pipeline's workspace."""

    def __init__(self, runs: ScheduledRuns) -> None:
        self.runs = runs

    def claim_fire(self, pipeline: str, fire_time: datetime, holder: str) -> bool:
        return self.runs.claims_for(pipeline).claim_fire(pipeline, fire_time, holder)

    def last_fire(self, pipeline: str) -> datetime | None:
        return self.runs.claims_for(pipeline).last_fire(pipeline)
