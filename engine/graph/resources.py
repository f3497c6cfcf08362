"""Vector's resource check: two sinks that write one resource (a file, a table, a queue) would
each undo or interleave the other's output, so compile refuses it, naming both places."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from engine.components.base import Role, SinkConfig, WrittenResource
from engine.errors import Diagnostic
from engine.runtime.plan import ComponentEntry, DocumentView

__all__ = ["check_resources"]


def check_resources(
    doc: DocumentView, components: Mapping[str, ComponentEntry]
) -> list[Diagnostic]:
    """An E043 for every sink that writes what an earlier sink of the file writes."""
    base = doc.path.parent if doc.path is not None else Path()
    writers: dict[str, list[tuple[str, WrittenResource]]] = {}
    for cid, entry in components.items():
        config = entry.config
        if entry.role is not Role.SINK or not isinstance(config, SinkConfig):
            continue
        written = config.written_resource(base)
        if written is not None:
            writers.setdefault(written.identity, []).append((cid, written))
    problems = []
    for sinks in writers.values():
        if len(sinks) < 2:
            continue
        places = []
        for cid, written in sinks:
            line, col = doc.where(("sinks", cid, written.key))
            places.append(f"sinks.{cid} ({doc.name}:{line}:{col})")
        shown = sinks[0][1].shown
        for cid, written in sinks[1:]:
            problems.append(
                doc.diagnostic(
                    "E043",
                    f"{' and '.join(places)} both write {shown}",
                    ("sinks", cid, written.key),
                    "give each sink its own target, or read both streams into one sink",
                )
            )
    return problems
