"""Prometheus text read back with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["sample_value", "samples"]


def samples(text: str) -> list[Sample]:
    """Every sample of an exposition (text format 0.0.4), parsed."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """The sum of the samples called ``name`` whose labels include ``labels``; None if none."""
    found = [
        s.value
        for s in samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None
