"""A process's metrics and traces, from start to exit: what `engine run` and `engine serve` use.

Metrics go to a registry of their own; a batch run writes them to ``metrics_file`` in the
node exporter's textfile-collector format (atomically: a temporary file renamed, every
``every`` seconds during the run and once at the end) and pushes them to a Pushgateway at
the end (job ``engine``, grouping key ``pipeline``). Traces are exported over OTLP when the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set and the ``otel``
extra is installed; without them nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from engine.redact import redact_url
from engine.runtime.telemetry import NULL_TELEMETRY, RunTelemetry
from engine.settings import EngineSettings
from engine.telemetry.hooks import Hooks

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from engine.telemetry.metrics import EngineMetrics

__all__ = ["PUSH_JOB", "TelemetrySession", "tracing_requested"]

PUSH_JOB = "engine"
PUSH_TIMEOUT = 10.0
WRITE_EVERY = 5.0
OTEL_EXTRA = "pip install 'engine[otel]'"


def tracing_requested(settings: EngineSettings) -> bool:
    """Whether the environment asks for traces over OTLP: an endpoint is set (and
    OTEL_SDK_DISABLED is not true)."""
    endpoints = (settings.otel_exporter_otlp_endpoint, settings.otel_exporter_otlp_traces_endpoint)
    return not settings.otel_sdk_disabled and any(endpoints)


class TelemetrySession:
    """Metrics (always under `serve`; for a batch run when a file or a push is asked for)
    and traces (when the environment asks), set up on enter and written, pushed and flushed
    on exit. Problems writing or pushing go to ``warn``; they never fail the run."""

    def __init__(
        self,
        pipeline: str,
        *,
        metrics: bool = False,
        metrics_file: Path | None = None,
        pushgateway: str | None = None,
        settings: EngineSettings | None = None,
        warn: Callable[[str], None] = lambda line: None,
        every: float = WRITE_EVERY,
    ) -> None:
        self.pipeline = pipeline
        self.metrics_file = metrics_file
        self.pushgateway = pushgateway
        self.settings = settings if settings is not None else EngineSettings.defaults()
        self.warn = warn
        self.every = every
        self.metrics: EngineMetrics | None = None
        if metrics or metrics_file is not None or pushgateway is not None:
            from engine.telemetry.metrics import EngineMetrics

            self.metrics = EngineMetrics()
        self._provider: TracerProvider | None = None
        self._hooks: list[RunTelemetry] = [self.metrics] if self.metrics is not None else []
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._write_failed = False

    @property
    def hook(self) -> RunTelemetry:
        """What the runner is given."""
        if not self._hooks:
            return NULL_TELEMETRY
        return self._hooks[0] if len(self._hooks) == 1 else Hooks(*self._hooks)

    def __enter__(self) -> TelemetrySession:
        if tracing_requested(self.settings):
            self._start_tracing()
        if self.metrics_file is not None:
            self._writer = threading.Thread(
                target=self._write_periodically, name="engine-metrics-file", daemon=True
            )
            self._writer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
        self.write()
        self.push()
        if self._provider is not None:
            self._provider.shutdown()  # exports the spans still queued

    # -- traces ------------------------------------------------------------------------------
    def _start_tracing(self) -> None:
        try:
            from engine.telemetry.traces import Tracing, otlp_provider
        except ImportError:
            self.warn(f"an OTLP endpoint is set, but traces need the otel extra: {OTEL_EXTRA}")
            return
        self._provider = otlp_provider(self.settings.otel_service_name)
        self._hooks.append(Tracing(self._provider))

    # -- metrics -----------------------------------------------------------------------------
    def _write_periodically(self) -> None:
        while not self._stop.wait(self.every):
            self.write()

    def write(self) -> None:
        """Write the metrics file now (atomically), if one was asked for."""
        if self.metrics is None or self.metrics_file is None:
            return
        from prometheus_client import write_to_textfile

        try:
            self.metrics_file.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(self.metrics_file), self.metrics.registry)
        except OSError as exc:
            if not self._write_failed:  # said once, not every few seconds
                self._write_failed = True
                self.warn(f"cannot write the metrics file {self.metrics_file}: {exc}")

    def push(self) -> None:
        """Push the metrics to the Pushgateway, if one was asked for."""
        if self.metrics is None or self.pushgateway is None:
            return
        from prometheus_client import push_to_gateway

        try:
            push_to_gateway(
                self.pushgateway,
                job=PUSH_JOB,
                registry=self.metrics.registry,
                grouping_key={"pipeline": self.pipeline},
                timeout=PUSH_TIMEOUT,
            )
        except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
            self.warn(f"cannot push metrics to {redact_url(self.pushgateway)}: {exc}")
