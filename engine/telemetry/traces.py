"""OpenTelemetry traces of runs (the ``otel`` extra): a span per run and per batch stage.

A run is one ``pipeline.run`` span; each batch a source read, a transform processed or a sink
wrote is a child span (``source.read``, ``transform``, ``sink.write``) with the batch's own
start and end times and the attributes ``engine.pipeline``, ``engine.component``,
``engine.role``, ``engine.records`` and ``engine.event_id``, the id of the audit event that
recorded the batch, so a trace leads to the trail. Importing this module imports
OpenTelemetry: the rest of the engine imports it only when tracing is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from engine.connectors.context import NULL_METER, Meter
from engine.runtime.observer import BatchAction, RunInfo, RunSummary, StageInfo
from engine.runtime.telemetry import BatchTiming, Stage

__all__ = ["SPAN_NAMES", "Tracing", "otlp_provider"]

SPAN_NAMES = {
    BatchAction.READ: "source.read",
    BatchAction.TRANSFORMED: "transform",
    BatchAction.WRITTEN: "sink.write",
}
RUN_SPAN = "pipeline.run"


@dataclass(slots=True)
class _Watched:
    info: StageInfo
    pipeline: str
    run: Span
    context: Context


class Tracing:
    """Spans of every run in this process, from ``provider`` (default: the global one)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("engine", tracer_provider=provider)
        self._runs: dict[str, Span] = {}
        self._watched: dict[int, _Watched] = {}

    def _stage(self, stage: StageInfo) -> _Watched | None:
        found = self._watched.get(id(stage))
        return found if found is not None and found.info is stage else None

    def run_started(self, run: RunInfo, stages: Mapping[str, Stage]) -> None:
        span = self.tracer.start_span(
            RUN_SPAN,
            kind=SpanKind.INTERNAL,
            start_time=int(run.started_at.timestamp() * 1e9),
            attributes={
                "engine.pipeline": run.pipeline,
                "engine.run_id": run.run_id,
                "engine.dry_run": run.dry_run,
            },
        )
        self._runs[run.run_id] = span
        context = trace.set_span_in_context(span)
        for stage in stages.values():
            self._watched[id(stage.info)] = _Watched(stage.info, run.pipeline, span, context)

    def batch(self, stage: StageInfo, timing: BatchTiming) -> None:
        watched = self._stage(stage)
        if watched is None:
            return
        attributes: dict[str, str | int] = {
            "engine.pipeline": watched.pipeline,
            "engine.component": stage.component,
            "engine.role": stage.role,
            "engine.type": stage.type,
            "engine.records": timing.records,
        }
        if timing.event_id is not None:
            attributes["engine.event_id"] = timing.event_id
        span = self.tracer.start_span(
            SPAN_NAMES[timing.action],
            context=watched.context,
            start_time=timing.began_ns,
            attributes=attributes,
        )
        span.end(end_time=max(timing.ended_ns, timing.began_ns))

    def dead_lettered(self, stage: StageInfo, records: int) -> None:
        watched = self._stage(stage)
        if watched is not None:
            watched.run.add_event(
                "dead_letter", {"engine.component": stage.component, "engine.records": records}
            )

    def component_event(self, stage: StageInfo, action: str, details: Mapping[str, object]) -> None:
        watched = self._stage(stage)
        if watched is not None and action.startswith("circuit_"):
            watched.run.add_event(action, {"engine.component": stage.component})

    def meter(self, stage: StageInfo) -> Meter:
        return NULL_METER

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        span = self._runs.pop(run.run_id, None)
        if span is None:
            return
        for key in [k for k, w in self._watched.items() if w.run is span]:
            del self._watched[key]
        span.set_attribute("engine.outcome", summary.outcome)
        span.set_attribute("engine.dead_letters", summary.dead_letters)
        if summary.outcome == "failure":
            span.set_status(Status(StatusCode.ERROR, summary.error or "the run failed"))
        span.end()


def otlp_provider(service_name: str | None = None) -> SdkTracerProvider:
    """An SDK tracer provider exporting over OTLP (HTTP/protobuf), configured by the standard
    ``OTEL_*`` variables, which OpenTelemetry reads (endpoint, headers, resource
    attributes); the service is ``service_name`` (OTEL_SERVICE_NAME), else ``engine``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = SdkTracerProvider(resource=Resource.create({SERVICE_NAME: service_name or "engine"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
