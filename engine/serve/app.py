"""`engine serve FILE`: the pipeline running long, fed by webhook requests over HTTP.

One ASGI app (Starlette) serves each webhook source at its path, ``/livez`` (the process
answers), ``/readyz`` (the pipeline compiled and runs, its sources open), ``/healthz``
(ready, and every other component's endpoint passes its check) and ``/metrics``. A webhook
request is answered 2xx only after every sink downstream delivered its records (the
runtime's acknowledgement); a bad signature gets 401 and a SECURITY event; a replayed
delivery is answered 200 without being ingested again.

On SIGTERM or SIGINT (``serve(handle_signals=True)``) the server stops taking requests (the
listener closes; a request arriving on an open connection gets 503), answers the requests in
flight, then stops the pipeline, which delivers what it holds and closes its sinks.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.codecs import JsonCodec
from engine.components.base import ComponentContext, Source
from engine.components.expressions import CompiledExpressions
from engine.components.sources.webhook import WebhookSource, WebhookSourceConfig
from engine.errors import EngineError, TransientError
from engine.health import check_node
from engine.pipeline import run
from engine.records import Batch
from engine.runtime.observer import RunObserver, RunSummary
from engine.runtime.plan import Node, Plan
from engine.runtime.runner import Runner
from engine.runtime.telemetry import RunTelemetry
from engine.serve.http import Server, http_server
from engine.serve.metrics import Metrics
from engine.settings import EngineSettings
from engine.telemetry.hooks import Hooks
from engine.webhooks.body import decode_request_body
from engine.webhooks.intake import Intake, IntakeClosed
from engine.webhooks.replay import Claim, ReplayStore, Seen, open_replay_store, replay_keys
from engine.webhooks.signatures import SignatureError, verify
from engine.workspace import workspace_for

__all__ = ["EngineServer", "WebhookRoute"]

HEALTH_CACHE_SECONDS = 10.0
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
#: a claim's lease outlasts the wait for delivery by this much; a crash leaves it to expire
LEASE_MARGIN = 30.0
_RETRY = {"Retry-After": "5"}


class _BodyTooLarge(Exception):
    pass


class WebhookRoute:
    """One webhook source: its intake queue, replay scope and the source once built."""

    def __init__(
        self, pipeline: str, cid: str, config: WebhookSourceConfig, expressions: CompiledExpressions
    ) -> None:
        self.cid = cid
        self.config = config
        self.scope = f"{pipeline}/{cid}"
        self.intake = Intake(config.queue)
        self.records = expressions.get(("records",), config.records) if config.records else None
        self.source: WebhookSource | None = None

    def factory(self, node: Node, context: ComponentContext) -> Source[Any]:
        self.source = WebhookSource(self.config, context, intake=self.intake)
        return self.source

    def emit(self, action: str, level: str, **details: object) -> None:
        if self.source is not None:
            self.source.context.emit(action, level, **details)

    def decode(self, body: bytes, content_type: str | None) -> Batch:
        codec = self.config.codec
        json_codec = isinstance(codec, JsonCodec)
        return decode_request_body(
            body,
            content_type,
            kind="json" if json_codec else self.config.content,
            codec=None if json_codec else codec,
            records=self.records,
            where=f"webhook:{self.config.path}",
        )


class EngineServer:
    """The app and the pipeline run behind it; ``serve()`` runs both until stopped."""

    def __init__(
        self,
        plan: Plan,
        *,
        workspace: Path | None = None,
        observer: RunObserver | None = None,
        replay: ReplayStore | None = None,
        run_id: str | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        settings: EngineSettings | None = None,
        telemetry: RunTelemetry | None = None,
    ) -> None:
        # the environment's settings: read here unless the caller (the CLI) passes them
        self.settings = settings if settings is not None else EngineSettings.load()
        self.plan = plan
        self.workspace = workspace
        self.observer = observer
        self.run_id = run_id
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.routes: dict[str, WebhookRoute] = {}
        for node in plan.nodes.values():
            if isinstance(node.config, WebhookSourceConfig):
                self.routes[node.id] = WebhookRoute(
                    plan.name, node.id, node.config, plan.expressions_of(node.id)
                )
        self.replay = replay or open_replay_store(
            workspace or workspace_for(plan.spec.file, self.settings),
            self.settings.integration_redis_url,
        )
        self.metrics = Metrics(plan.name)
        # the run's metrics, and traces when the caller sets them up
        self.telemetry: RunTelemetry = (
            self.metrics.run if telemetry is None else Hooks(self.metrics.run, telemetry)
        )
        self.runner: Runner | None = None
        self.summary: RunSummary | None = None
        self.started = anyio.Event()
        self.stopping = False
        self._server: Server | None = None
        self._health: tuple[float, dict[str, str | None]] | None = None
        routes = [
            Route(r.config.path, self._endpoint(r), methods=["POST"]) for r in self.routes.values()
        ]
        routes += [
            Route("/livez", self.livez, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
        ]
        self.app = Starlette(routes=routes)

    # -- the pipeline -------------------------------------------------------------------------
    async def run_pipeline(self) -> RunSummary:
        overrides = {cid: route.factory for cid, route in self.routes.items()}
        kwargs: dict[str, Any] = {
            "source_overrides": overrides,
            "telemetry": self.telemetry,
            "runner_hook": self._hook,
            "settings": self.settings,
        }
        if self.workspace is not None:
            kwargs["workspace"] = self.workspace
        if self.observer is not None:
            kwargs["observer"] = self.observer
        if self.run_id is not None:
            kwargs["run_id"] = self.run_id
        try:
            self.summary = await run(self.plan, **kwargs)
        finally:
            self.metrics.up = False
            for route in self.routes.values():
                route.intake.close("the pipeline stopped")
        return self.summary

    def _hook(self, runner: Runner) -> None:
        self.runner = runner
        if self.stopping:
            runner.stop()

    def stop(self) -> None:
        """Stop taking requests, let the pipeline deliver what it holds, then end."""
        self.stopping = True
        self.metrics.up = False  # /healthz turns 503: load balancers stop sending
        if self._server is not None:
            self._server.should_exit = True

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        log_level: str = "warning",
        *,
        handle_signals: bool = False,
    ) -> RunSummary:
        """Serve until stopped (or, with ``handle_signals``, until SIGTERM/SIGINT); then drain."""
        self._server = http_server(
            self.app, host, port, log_level=log_level, header_timeout=self.header_timeout
        )
        summary: RunSummary | None = None
        finished = anyio.Event()

        async def pipeline() -> None:
            nonlocal summary
            try:
                summary = await self.run_pipeline()
            finally:
                finished.set()
                self.stop()  # the pipeline ended (failed, or had no long-running source)

        try:
            async with anyio.create_task_group() as tg:
                if handle_signals:
                    tg.start_soon(self._signals)
                tg.start_soon(pipeline)
                tg.start_soon(self._mark_started)
                await self._server.serve()
                # uvicorn has answered every request in flight; now drain the pipeline
                self.stopping = True
                if self.runner is not None:
                    self.runner.stop()
                await finished.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.replay.aclose()
        assert summary is not None
        return summary

    async def _signals(self) -> None:
        # the first signal stops taking requests; a second one stops waiting for open ones
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            async for _ in received:
                if self.stopping and self._server is not None:
                    self._server.force_exit = True
                self.stop()

    async def _mark_started(self) -> None:
        # started (and up): listening, and every webhook source is taking requests
        assert self._server is not None
        intakes = [route.intake for route in self.routes.values()]
        while not (self._server.started and self.runner is not None) or not all(
            intake.open for intake in intakes
        ):
            await anyio.sleep(0.01)
        self.metrics.up = not self.stopping
        self.started.set()

    @property
    def port(self) -> int | None:
        server = self._server
        if server is None or not server.servers:
            return None
        for sock in server.servers[0].sockets:
            return int(sock.getsockname()[1])
        return None

    # -- webhook requests -----------------------------------------------------------------------
    def _endpoint(self, route: WebhookRoute) -> Any:
        async def endpoint(request: Request) -> Response:
            with self.metrics.in_flight(route.cid):
                response = await self._handle(route, request)
            self.metrics.request(route.cid, response.status_code)
            return response

        return endpoint

    async def _handle(self, route: WebhookRoute, request: Request) -> Response:
        config = route.config
        if self.stopping:
            return JSONResponse(
                {"error": "shutting down; retry"}, 503, headers={**_RETRY, "Connection": "close"}
            )
        try:
            with anyio.fail_after(self.body_timeout):
                body = await _read_body(request, config.max_body)
        except _BodyTooLarge:
            return JSONResponse({"error": f"body larger than {config.max_body} bytes"}, 413)
        except ClientDisconnect:
            return Response(status_code=400)
        except TimeoutError:
            return JSONResponse(
                {"error": f"request body not received within {self.body_timeout:g}s"},
                408,
                headers={"Connection": "close"},
            )
        keys: tuple[str, ...] = ()
        if config.signature is not None:
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                keys = replay_keys(route.scope, verify(config.signature, headers, body))
            except SignatureError as exc:
                self.metrics.signature_failure(route.cid)
                route.emit(
                    "webhook_signature_rejected",
                    "WARNING",
                    category="SECURITY",
                    path=config.path,
                    preset=config.signature.type,
                    reason=str(exc),
                    client=request.client.host if request.client else None,
                )
                return JSONResponse({"error": f"invalid signature: {exc}"}, 401)
        try:
            records = route.decode(body, request.headers.get("content-type"))
        except EngineError as exc:  # a codec's located error, never a 500
            return JSONResponse({"error": str(exc)}, 400)
        claim: Claim | None = None
        if keys:
            claimed = await self._claim(route, keys)
            if isinstance(claimed, Response):
                return claimed
            claim = claimed
        try:
            response = await self._deliver(route, records)
        except BaseException:
            await self._settle(route, claim, delivered=False)
            raise
        await self._settle(route, claim, delivered=response.status_code == 200)
        return response

    async def _claim(self, route: WebhookRoute, keys: tuple[str, ...]) -> Claim | Response:
        """This delivery's claim, or the answer to a copy of one made or being made."""
        config = route.config
        try:
            claimed = await self.replay.claim(
                keys, config.replay_ttl, lease=config.ack_timeout + LEASE_MARGIN
            )
        except TransientError as exc:
            return JSONResponse({"error": str(exc)}, 503, headers=_RETRY)
        if claimed is Seen.IN_FLIGHT:
            # not a 2xx: if the copy in flight fails, the provider must still retry
            error = "this delivery is being processed; retry"
            return JSONResponse({"error": error}, 409, headers=_RETRY)
        if claimed is Seen.DELIVERED:
            self.metrics.replay(route.cid)
            route.emit("webhook_replay_ignored", "WARNING", path=config.path)
            return JSONResponse({"accepted": 0, "duplicate": True}, 200)
        return claimed

    async def _settle(self, route: WebhookRoute, claim: Claim | None, *, delivered: bool) -> None:
        """Delivered: copies are duplicates from now on; not: the provider's retry gets through."""
        if claim is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                if delivered:
                    await self.replay.confirm(claim)
                else:
                    await self.replay.release(claim)
            except TransientError as exc:
                route.emit("webhook_replay_store_failed", "ERROR", reason=str(exc))

    async def _deliver(self, route: WebhookRoute, records: Batch) -> Response:
        if records:
            try:
                pending = await route.intake.submit(records)
                delivered = await pending.wait(route.config.ack_timeout)
            except IntakeClosed as exc:
                return JSONResponse({"error": str(exc)}, 503, headers=_RETRY)
            if not delivered:
                return JSONResponse({"error": "not delivered in time; retry"}, 503, headers=_RETRY)
        self.metrics.accepted(route.cid, len(records))
        return JSONResponse({"accepted": len(records)}, 200)

    # -- operations --------------------------------------------------------------------------
    async def livez(self, request: Request) -> Response:
        """The process answers: 200 as long as it serves at all."""
        return JSONResponse({"status": "alive", "pipeline": self.plan.name})

    async def readyz(self, request: Request) -> Response:
        """Ready for requests: the pipeline runs and every webhook source takes them; 503
        before that and once stopping (load balancers stop sending)."""
        ready = self.metrics.up
        body = {"status": "ready" if ready else "not ready", "pipeline": self.plan.name}
        return JSONResponse(body, 200 if ready else 503)

    async def healthz(self, request: Request) -> Response:
        """Ready, and every other component's endpoint passes its check (cached)."""
        now = time.monotonic()
        if self._health is None or now - self._health[0] > HEALTH_CACHE_SECONDS:
            results: dict[str, str | None] = {}

            async def one(node: Node) -> None:
                results[node.id] = await check_node(
                    self.plan, node, timeout=5.0, settings=self.settings
                )

            async with anyio.create_task_group() as tg:
                for node in self.plan.nodes.values():
                    if node.id not in self.routes:
                        tg.start_soon(one, node)
            self._health = (now, results)
        checks = self._health[1]
        running = self.metrics.up
        healthy = running and all(v is None for v in checks.values())
        body = {
            "status": "ok" if healthy else "unhealthy",
            "pipeline": self.plan.name,
            "running": running,
            "components": {cid: v or "ok" for cid, v in checks.items()},
        }
        return JSONResponse(body, 200 if healthy else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        # stage statistics are read live from the runtime at each scrape
        body, content_type = self.metrics.render(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes without reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise _BodyTooLarge
        parts.append(part)
    return b"".join(parts)
