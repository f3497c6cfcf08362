"""Metrics (Prometheus, through ``prometheus_client``) and traces (OpenTelemetry, the ``otel``
extra) of runs: implementations of :class:`engine.runtime.telemetry.RunTelemetry`.

``engine.telemetry.metrics.EngineMetrics`` keeps one registry per process;
``engine.telemetry.traces.Tracing`` makes the spans; ``engine.telemetry.session`` sets both
up for a command (metrics file, Pushgateway, OTLP from the ``OTEL_*`` variables). Importing
this package imports neither library.
"""

from engine.telemetry.hooks import Hooks

__all__ = ["Hooks"]
