"""Counters for `/metrics`, rendered in the Prometheus text exposition format (0.0.4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from engine.runtime.observer import StageStats

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_STAGE_COUNTERS = (
    ("records_in", "Records a stage received."),
    ("records_out", "Records a stage passed on or delivered."),
    ("rejected", "Records skipped or dead-lettered."),
    ("batches", "Batches handled."),
    ("errors", "Errors that failed a stage."),
    ("retries", "Transient failures retried."),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Metrics:
    """Webhook request counters plus the runtime's stage statistics."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.accepted_records: dict[str, int] = defaultdict(int)
        self.signature_failures: dict[str, int] = defaultdict(int)
        self.replays: dict[str, int] = defaultdict(int)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.stages: Mapping[str, StageStats] = {}
        self.up = False

    def request(self, source: str, status: int) -> None:
        self.requests[(source, status)] += 1

    def render(self) -> str:
        p = self.pipeline
        lines = [
            "# HELP engine_pipeline_up Whether the served pipeline is running.",
            "# TYPE engine_pipeline_up gauge",
            f"engine_pipeline_up{_labels(pipeline=p)} {int(self.up)}",
            "# HELP engine_webhook_requests_in_flight Webhook requests being read or delivered.",
            "# TYPE engine_webhook_requests_in_flight gauge",
        ]
        for source, count in sorted(self.in_flight.items()):
            lines.append(
                f"engine_webhook_requests_in_flight{_labels(pipeline=p, source=source)} {count}"
            )
        lines += [
            "# HELP engine_webhook_requests_total Webhook requests answered, by status code.",
            "# TYPE engine_webhook_requests_total counter",
        ]
        for (source, status), count in sorted(self.requests.items()):
            labels = _labels(pipeline=p, source=source, code=str(status))
            lines.append(f"engine_webhook_requests_total{labels} {count}")
        for name, help_text, values in (
            (
                "engine_webhook_records_accepted_total",
                "Records delivered from webhook requests.",
                self.accepted_records,
            ),
            (
                "engine_webhook_signature_failures_total",
                "Requests refused for a bad signature.",
                self.signature_failures,
            ),
            (
                "engine_webhook_replays_total",
                "Deliveries seen before, not ingested again.",
                self.replays,
            ),
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for source, count in sorted(values.items()):
                lines.append(f"{name}{_labels(pipeline=p, source=source)} {count}")
        for field, help_text in _STAGE_COUNTERS:
            name = f"engine_stage_{field}_total"
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for component, stats in sorted(self.stages.items()):
                value = getattr(stats, field)
                lines.append(f"{name}{_labels(pipeline=p, component=component)} {value}")
        return "\n".join(lines) + "\n"
