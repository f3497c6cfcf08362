"""``IntegrationManager``: the seed's Python API as a thin façade over the connector code.

Each REST/GraphQL integration is an :class:`HttpEndpoint` (the same client, auth, token
bucket, circuit breaker and error map the pipeline kinds use); retries go through the
runtime's :func:`retry_call` with the integration's ``retry_count``; webhooks are verified
with the same signature presets `engine serve` uses.
"""

from __future__ import annotations

import inspect
import io
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from engine.codecs import CodecConfig, CsvCodec
from engine.components.base import ComponentContext, RetryPolicy
from engine.connectors.http.auth import ApiKeyAuth
from engine.connectors.http.client import HttpEndpoint
from engine.connectors.http.delivery import content_type
from engine.connectors.http.options import HttpOptions
from engine.errors import EngineError, PermanentError
from engine.integrations.models import (
    DataFormat,
    DataMapping,
    EventStatus,
    IntegrationConfig,
    IntegrationEvent,
    IntegrationType,
)
from engine.resilience.breaker import CircuitBreakerConfig
from engine.resilience.ratelimit import RateLimitSpec
from engine.runtime.retry import default_policy, retry_call
from engine.settings import EngineSettings
from engine.webhooks.signatures import HmacSignature, SignatureError, verify
from engine.workspace import workspace_for

__all__ = ["IntegrationManager"]

WebhookHandler = Callable[[Any], Any]
HTTP_TYPES = (IntegrationType.API_REST, IntegrationType.API_GRAPHQL, IntegrationType.WEBHOOK)


class _Stats:
    __slots__ = ("failures", "last_error", "last_event_at", "records", "requests", "successes")

    def __init__(self) -> None:
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.records = 0
        self.last_error: str | None = None
        self.last_event_at: datetime | None = None


class IntegrationManager:
    """Registers integrations, maps data, sends it, receives webhooks, reports on all of it."""

    def __init__(
        self,
        redis_url: str | None = None,
        pipeline: str = "integrations",
        *,
        settings: EngineSettings | None = None,
        workspace: Path | None = None,
    ) -> None:
        # the environment's settings (INTEGRATION_*): read here unless passed
        self.settings = settings if settings is not None else EngineSettings.load()
        #: ``workspace``, else $ENGINE_HOME, else ./.engine (the rule of engine.workspace)
        self.workspace = workspace_for(None, self.settings, workspace)
        self.redis_url = redis_url or self.settings.integration_redis_url
        self.pipeline = pipeline
        self.integrations: dict[str, IntegrationConfig] = {}
        self.mappings: dict[str, list[DataMapping]] = defaultdict(list)
        self.webhook_handlers: dict[str, list[WebhookHandler]] = defaultdict(list)
        self.events: list[IntegrationEvent] = []
        self.component_events: list[tuple[str, str, str, dict[str, object]]] = []
        self._endpoints: dict[str, HttpEndpoint] = {}
        self._stats: dict[str, _Stats] = defaultdict(_Stats)
        self.running = False

    # -- configuration --------------------------------------------------------------------------
    def add_integration(self, config: IntegrationConfig) -> None:
        if not config.name:
            raise PermanentError("an integration needs a name")
        if config.type in HTTP_TYPES and not config.base_url.lower().startswith(
            ("http://", "https://")
        ):
            raise PermanentError(f"{config.name}: base_url must be an http(s) URL")
        self.integrations[config.name] = config

    def add_data_mapping(self, name: str, mapping: DataMapping) -> None:
        self.mappings[name].append(mapping)

    def add_webhook_handler(self, name: str, handler: WebhookHandler) -> None:
        self.webhook_handlers[name].append(handler)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        for name, config in self.integrations.items():
            if config.type in HTTP_TYPES and name not in self._endpoints:
                endpoint = self._endpoint(config)
                await endpoint.open()
                self._endpoints[name] = endpoint
        self.running = True

    async def stop(self) -> None:
        self.running = False
        endpoints, self._endpoints = self._endpoints, {}
        for endpoint in endpoints.values():
            await endpoint.aclose()

    async def __aenter__(self) -> IntegrationManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _endpoint(self, config: IntegrationConfig) -> HttpEndpoint:
        rate = (
            config.rate_limit
            if config.rate_limit is not None
            else self.settings.integration_rate_limit
        )
        options = HttpOptions(
            url=config.base_url,
            headers=dict(config.headers),
            auth=ApiKeyAuth(key=SecretStr(config.api_key)) if config.api_key else None,
            rate_limit=RateLimitSpec(
                rate=f"{rate}/s", redis=self.redis_url or False, key=f"integration:{config.name}"
            )
            if rate
            else None,
            circuit_breaker=CircuitBreakerConfig(),
        )
        policy = (
            RetryPolicy(attempts=config.retry_count + 1)
            if config.retry_count is not None
            else default_policy(self.settings.integration_retry_count)
        )

        async def caller(fn: Callable[[], Awaitable[Any]]) -> Any:
            return await retry_call(fn, policy)

        def emitter(action: str, level: str, details: Mapping[str, object]) -> None:
            self.component_events.append((config.name, action, level, dict(details)))

        context = ComponentContext(
            component_id=config.name,
            pipeline=self.pipeline,
            base_dir=Path.cwd(),
            workspace=self.workspace,
            caller=caller,
            emitter=emitter,
            settings=self.settings,
            timeout=config.timeout,
        )
        return HttpEndpoint(options, context)

    # -- data -----------------------------------------------------------------------------------
    def transform(self, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Apply the integration's mappings; unmapped fields pass through unchanged."""
        out = dict(data)
        for mapping in self.mappings.get(name, ()):
            present = mapping.source_field in data and data[mapping.source_field] is not None
            if not present and mapping.default_value is None and mapping.required:
                raise PermanentError(f"{name}: required field {mapping.source_field!r} is missing")
            value = data[mapping.source_field] if present else mapping.default_value
            if present and mapping.transformation is not None:
                value = mapping.transformation(value)
            if mapping.source_field != mapping.target_field:
                out.pop(mapping.source_field, None)
            out[mapping.target_field] = value
        return out

    def _encode(
        self, config: IntegrationConfig, records: list[dict[str, Any]], single: bool
    ) -> bytes:
        fmt = config.data_format
        if fmt is DataFormat.CSV:
            codec: CodecConfig = CsvCodec()
            buffer = io.BytesIO()
            encoder = codec.encoder(buffer)
            encoder.write(records)
            encoder.finish()
            return buffer.getvalue()
        return orjson.dumps(records[0] if single else records)

    async def send_data(
        self, name: str, endpoint: str, data: Mapping[str, Any] | list[Mapping[str, Any]]
    ) -> IntegrationEvent:
        """Map and send ``data`` to ``base_url + endpoint``; the event says how it went."""
        config = self._config(name)
        if name not in self._endpoints:
            raise PermanentError(f"{name}: call start() before send_data()")
        single = not isinstance(data, list)
        items = [data] if isinstance(data, Mapping) else list(data)
        url = config.base_url.rstrip("/") + "/" + endpoint.lstrip("/")
        stats = self._stats[name]
        stats.requests += 1
        started = time.perf_counter()
        try:
            records = [self.transform(name, item) for item in items]
            body = self._encode(config, records, single)
            headers = {
                "Content-Type": content_type(
                    CsvCodec() if config.data_format is DataFormat.CSV else None
                )
            }
            response = await self._endpoints[name].request(
                "POST", url, content=body, headers=headers
            )
        except EngineError as exc:
            stats.failures += 1
            stats.last_error = str(exc)
            event = IntegrationEvent(
                name,
                endpoint,
                EventStatus.FAILED,
                len(items),
                getattr(exc, "status", None),
                str(exc),
            )
        else:
            stats.successes += 1
            stats.records += len(items)
            try:
                payload: Any = response.json()
            except ValueError:
                payload = response.text
            event = IntegrationEvent(
                name,
                endpoint,
                EventStatus.SUCCESS,
                len(items),
                response.status_code,
                response=payload,
            )
        event.duration_ms = (time.perf_counter() - started) * 1000
        stats.last_event_at = event.timestamp
        self.events.append(event)
        return event

    async def receive_webhook(
        self, name: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> IntegrationEvent:
        """Verify (``X-Signature: sha256=HEX`` with ``webhook_secret``) and run the handlers."""
        config = self.integrations.get(name)
        stats = self._stats[name]
        stats.requests += 1
        if config is not None and config.webhook_secret:
            spec = HmacSignature(
                secret=SecretStr(config.webhook_secret), header="X-Signature", prefix="sha256="
            )
            lowered = {k.lower(): v for k, v in (headers or {}).items()}
            try:
                verify(spec, lowered, body)
            except SignatureError as exc:
                stats.failures += 1
                stats.last_error = str(exc)
                event = IntegrationEvent(name, "webhook", EventStatus.FAILED, 0, 401, str(exc))
                self.events.append(event)
                return event
        data = orjson.loads(body) if body else None
        results = []
        for handler in self.webhook_handlers.get(name, ()):
            result = handler(data)
            if inspect.isawaitable(result):
                result = await result
            results.append(result)
        stats.successes += 1
        stats.records += 1
        event = IntegrationEvent(name, "webhook", EventStatus.SUCCESS, 1, 200, response=results)
        self.events.append(event)
        return event

    # -- reporting ------------------------------------------------------------------------------
    def _config(self, name: str) -> IntegrationConfig:
        try:
            return self.integrations[name]
        except KeyError:
            known = ", ".join(sorted(self.integrations)) or "none"
            raise PermanentError(f"unknown integration {name!r} (known: {known})") from None

    def get_integration_status(self, name: str) -> dict[str, Any]:
        config = self._config(name)
        stats = self._stats[name]
        endpoint = self._endpoints.get(name)
        breaker = endpoint.breaker.state.value if endpoint and endpoint.breaker else None
        if not self.running:
            state = "stopped"
        elif breaker == "open":
            state = "circuit_open"
        elif stats.failures and stats.failures >= stats.successes:
            state = "degraded"
        else:
            state = "active"
        return {
            "name": name,
            "type": config.type.value,
            "status": state,
            "base_url": config.base_url,
            "data_format": config.data_format.value,
            "requests": stats.requests,
            "successes": stats.successes,
            "failures": stats.failures,
            "records": stats.records,
            "circuit": breaker,
            "rate_limit_per_second": config.rate_limit,
            "mappings": len(self.mappings.get(name, ())),
            "webhook_handlers": len(self.webhook_handlers.get(name, ())),
            "last_error": stats.last_error,
            "last_event_at": stats.last_event_at.isoformat() if stats.last_event_at else None,
        }

    def generate_integration_report(self) -> dict[str, Any]:
        statuses = [self.get_integration_status(n) for n in sorted(self.integrations)]
        total = sum(s["requests"] for s in statuses)
        ok = sum(s["successes"] for s in statuses)
        return {
            "generated_at": datetime.now(UTC).isoformat(),
            "integrations": statuses,
            "summary": {
                "integrations": len(statuses),
                "requests": total,
                "successes": ok,
                "failures": sum(s["failures"] for s in statuses),
                "success_rate": ok / total if total else None,
                "events": len(self.events),
            },
        }
