"""Prometheus metrics of runs, through ``prometheus_client``, in one registry per process.

:class:`EngineMetrics` is a :class:`~engine.runtime.telemetry.RunTelemetry`: record counts,
rejections, retries and errors are read at scrape time from the runtime's live stage
statistics (plus the totals of runs already finished), so a scrape during a run sees them
grow and nothing is counted twice; batch latencies, dead letters, circuit states, response
codes, backlog and run outcomes are recorded as they happen. The names are documented in
docs/operations.md (``## Metrics``).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from engine.connectors.context import Meter
from engine.resilience.breaker import BreakerState
from engine.runtime.observer import RunInfo, RunSummary, StageInfo, StageStats
from engine.runtime.telemetry import BatchTiming, Stage

__all__ = ["BATCH_BUCKETS", "CIRCUIT_VALUES", "EngineMetrics", "exposition"]

#: seconds: a batch through a stage takes from a millisecond to minutes
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: the value of ``engine_circuit_state`` per breaker state
CIRCUIT_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}

_STAGE_LABELS = ("pipeline", "component", "role")
#: the stage statistics exposed as counters: (StageStats field, metric name, help)
_STAGE_COUNTERS = (
    ("records_in", "engine_records_in", "Records a component received (transforms, sinks)."),
    ("records_out", "engine_records_out", "Records a component read, passed on or delivered."),
    ("rejected", "engine_records_rejected", "Records skipped or dead-lettered by a component."),
    ("retries", "engine_retries", "Transient failures of a component that were retried."),
    ("errors", "engine_errors", "Failures that stopped a component."),
)


@dataclass(slots=True)
class _Run:
    pipeline: str
    stages: Mapping[str, Stage]


@dataclass(slots=True)
class _Watched:
    """One stage of a running run, with its label values resolved once."""

    info: StageInfo
    labels: tuple[str, str, str]
    codes: dict[int, Counter] = field(default_factory=dict)


class _StageCounters(Collector):
    """The runtime's stage statistics as counters: finished runs' totals plus live ones."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        totals = self.metrics.stage_totals()
        for name, metric, help_text in _STAGE_COUNTERS:
            family = CounterMetricFamily(metric, help_text, labels=_STAGE_LABELS)
            for labels, stats in sorted(totals.items()):
                if name == "records_in" and labels[2] == "source":
                    continue  # a source receives nothing: what it reads is its output
                family.add_metric(labels, getattr(stats, name))
            yield family


class _StageMeter:
    """What one stage's connector reports, into the registry."""

    def __init__(self, metrics: EngineMetrics, stage: StageInfo) -> None:
        self.metrics = metrics
        self.stage = stage

    def response(self, status: int) -> None:
        watched = self.metrics.watched(self.stage)
        if watched is None:
            return
        counter = watched.codes.get(status)
        if counter is None:
            pipeline, component, _ = watched.labels
            counter = watched.codes[status] = self.metrics.responses.labels(
                pipeline, component, str(status)
            )
        counter.inc()

    def backlog(self, records: int) -> None:
        watched = self.metrics.watched(self.stage)
        if watched is not None:
            self.metrics.backlog.labels(*watched.labels[:2]).set(records)


class EngineMetrics:
    """The metrics of every run in this process, in ``registry`` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # no ``*_created`` series beside each counter: they double the output for nothing
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.batch_seconds = Histogram(
            "engine_batch_duration_seconds",
            "Seconds one batch took through a component: a source reading a chunk, a "
            "transform processing a batch, a sink writing one.",
            _STAGE_LABELS,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "engine_dead_letters",
            "Records a component wrote to the dead-letter file.",
            ("pipeline", "component"),
            registry=r,
        )
        self.circuit = Gauge(
            "engine_circuit_state",
            "A component's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ("pipeline", "component"),
            registry=r,
        )
        self.responses = Counter(
            "engine_http_responses",
            "HTTP responses a component received (http and graphql connectors), by status code.",
            ("pipeline", "component", "code"),
            registry=r,
        )
        self.backlog = Gauge(
            "engine_source_backlog_messages",
            "Messages waiting at a source (a queue's ready messages), as last reported.",
            ("pipeline", "component"),
            registry=r,
        )
        self.runs = Counter(
            "engine_runs", "Runs finished, by outcome.", ("pipeline", "outcome"), registry=r
        )
        self.running = Gauge(
            "engine_runs_in_progress", "Runs going on now.", ("pipeline",), registry=r
        )
        self.run_seconds = Gauge(
            "engine_run_duration_seconds",
            "Seconds the last finished run took.",
            ("pipeline",),
            registry=r,
        )
        self.run_finished_at = Gauge(
            "engine_run_last_finished_timestamp_seconds",
            "When the last run finished (Unix time).",
            ("pipeline", "outcome"),
            registry=r,
        )
        self._runs: dict[str, _Run] = {}
        self._finished: dict[tuple[str, str, str], StageStats] = defaultdict(StageStats)
        self._watched: dict[int, _Watched] = {}
        # a scrape may come from another thread (the metrics file's writer)
        self._lock = threading.Lock()
        r.register(_StageCounters(self))

    # -- what the collector and meters read -------------------------------------------------
    def stage_totals(self) -> dict[tuple[str, str, str], StageStats]:
        """Per (pipeline, component, role): finished runs' statistics plus live ones."""
        totals: dict[tuple[str, str, str], StageStats] = defaultdict(StageStats)
        with self._lock:
            for labels, stats in self._finished.items():
                _add(totals[labels], stats)
            for run in self._runs.values():
                for cid, stage in run.stages.items():
                    _add(totals[(run.pipeline, cid, stage.info.role)], stage.stats)
        return totals

    def watched(self, stage: StageInfo) -> _Watched | None:
        found = self._watched.get(id(stage))
        return found if found is not None and found.info is stage else None

    # -- RunTelemetry -------------------------------------------------------------------------
    def run_started(self, run: RunInfo, stages: Mapping[str, Stage]) -> None:
        with self._lock:
            self._runs[run.run_id] = _Run(run.pipeline, stages)
        for cid, stage in stages.items():
            labels = (run.pipeline, cid, stage.info.role)
            self._watched[id(stage.info)] = _Watched(stage.info, labels)
            # every stage shows from the start, at zero
            self.batch_seconds.labels(*labels)
        self.running.labels(run.pipeline).inc()

    def batch(self, stage: StageInfo, timing: BatchTiming) -> None:
        watched = self.watched(stage)
        if watched is not None:
            self.batch_seconds.labels(*watched.labels).observe(timing.seconds)

    def dead_lettered(self, stage: StageInfo, records: int) -> None:
        watched = self.watched(stage)
        if watched is not None:
            self.dead_letters.labels(*watched.labels[:2]).inc(records)

    def component_event(self, stage: StageInfo, action: str, details: Mapping[str, object]) -> None:
        watched = self.watched(stage)
        if watched is None or not action.startswith("circuit_"):
            return
        try:
            state = BreakerState(str(details.get("state")))
        except ValueError:
            return
        self.circuit.labels(*watched.labels[:2]).set(CIRCUIT_VALUES[state])

    def meter(self, stage: StageInfo) -> Meter:
        return _StageMeter(self, stage)

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        with self._lock:
            finished = self._runs.pop(run.run_id, None)
            if finished is None:
                return
            for cid, stage in finished.stages.items():
                _add(self._finished[(run.pipeline, cid, stage.info.role)], stage.stats)
                self._watched.pop(id(stage.info), None)
        self.running.labels(run.pipeline).dec()
        self.runs.labels(run.pipeline, summary.outcome).inc()
        self.run_seconds.labels(run.pipeline).set(summary.duration_s)
        self.run_finished_at.labels(run.pipeline, summary.outcome).set(time.time())


def _add(total: StageStats, stats: StageStats) -> None:
    for name, _, _ in _STAGE_COUNTERS:
        setattr(total, name, getattr(total, name) + getattr(stats, name))


def exposition(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The registry rendered in the format an Accept header prefers (the text format 0.0.4
    by default, OpenMetrics when asked), and its content type: what `/metrics` answers."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
