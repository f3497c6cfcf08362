"""`/metrics` of `engine serve`: the run's metrics plus the webhook server's, one registry.

The run's (records, batch latencies, retries, circuits, ...) come from
:class:`~engine.telemetry.metrics.EngineMetrics`; the webhook server adds whether the
pipeline is up, requests by status code, requests in flight, records accepted, bad
signatures and replays. Rendered by ``prometheus_client``: the text format 0.0.4, or
OpenMetrics for a scraper that asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge

from engine.telemetry.metrics import EngineMetrics, exposition

__all__ = ["Metrics"]


class Metrics:
    """The served pipeline's metrics: its run's (``run``) and its webhook server's."""

    def __init__(self, pipeline: str, run: EngineMetrics | None = None) -> None:
        self.pipeline = pipeline
        self.run = run if run is not None else EngineMetrics()
        r = self.run.registry
        source = ("pipeline", "source")
        running = "Whether the served pipeline is running."
        self._up = Gauge("engine_pipeline_up", running, ("pipeline",), registry=r).labels(pipeline)
        self._in_flight = Gauge(
            "engine_webhook_requests_in_flight",
            "Webhook requests being read or delivered.",
            source,
            registry=r,
        )
        self._requests = Counter(
            "engine_webhook_requests",
            "Webhook requests answered, by status code.",
            ("pipeline", "source", "code"),
            registry=r,
        )
        self._accepted = Counter(
            "engine_webhook_records_accepted",
            "Records delivered from webhook requests.",
            source,
            registry=r,
        )
        self._signature_failures = Counter(
            "engine_webhook_signature_failures",
            "Requests refused for a bad signature.",
            source,
            registry=r,
        )
        self._replays = Counter(
            "engine_webhook_replays",
            "Deliveries seen before, not ingested again.",
            source,
            registry=r,
        )
        self.up = False

    @property
    def up(self) -> bool:
        """Serving, with every webhook source taking requests (what `/readyz` says)."""
        return self._is_up

    @up.setter
    def up(self, value: bool) -> None:
        self._is_up = value
        self._up.set(int(value))

    @contextmanager
    def in_flight(self, source: str) -> Iterator[None]:
        gauge = self._in_flight.labels(self.pipeline, source)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def request(self, source: str, status: int) -> None:
        self._requests.labels(self.pipeline, source, str(status)).inc()

    def accepted(self, source: str, records: int) -> None:
        self._accepted.labels(self.pipeline, source).inc(records)

    def signature_failure(self, source: str) -> None:
        self._signature_failures.labels(self.pipeline, source).inc()

    def replay(self, source: str) -> None:
        self._replays.labels(self.pipeline, source).inc()

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition in the format ``accept`` (an Accept header) prefers, and its type."""
        return exposition(self.run.registry, accept)
