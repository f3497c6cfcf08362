"""Resuming interrupted finite runs: the checkpoint an interrupted run keeps in the state
database, and the run that goes on from it.

A checkpoint is kept only where going on is sound: every source can say where it stopped
(``position``: file sources with a line-based codec) and every sink can keep what it staged
(``suspend``: file sinks with one output and an encoder that can go on). Anything else starts
over, as does a checkpoint whose pipeline or input changed since.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.state import StateStore

__all__ = ["Resumed", "discard_suspended", "save", "take"]

#: where the checkpoint is kept: the state of no component
COMPONENT = ""
KEY = "checkpoint"


@dataclass(frozen=True)
class Resumed:
    """The run a resumed run goes on from, and where each source starts."""

    run_id: str
    sources: dict[str, str]  # source id -> where it starts, in words
    positions: dict[str, dict[str, Any]]

    def line(self) -> str:
        where = "; ".join(f"{cid}: {at}" for cid, at in self.sources.items())
        return f"resuming interrupted run {self.run_id}: {where}"

    def details(self) -> dict[str, object]:
        """For the trail's ``run_started``: the run resumed and each source's offsets."""
        return {
            "run_id": self.run_id,
            "sources": {
                cid: {
                    "file_index": pos["index"],
                    "file": pos["files"][pos["index"]][0]
                    if pos["index"] < len(pos["files"])
                    else None,
                    "offset": pos["offset"],
                    "line": pos["line"],
                }
                for cid, pos in self.positions.items()
            },
        }


def _resumable(sources: Mapping[str, Any], sinks: Mapping[str, Any]) -> bool:
    return all(hasattr(s, "position") for s in sources.values()) and all(
        hasattr(s, "suspend") for s in sinks.values()
    )


def save(
    state: StateStore,
    pipeline: str,
    *,
    run_id: str,
    pipeline_sha256: str | None,
    sources: Mapping[str, Any],
    sinks: Mapping[str, Any],
) -> bool:
    """Keep a checkpoint after a drained interruption: True when every source and sink could
    say where to go on. Otherwise nothing is kept (the staged outputs already suspended are
    removed) and the next run starts over."""
    if not _resumable(sources, sinks) or pipeline_sha256 is None:
        return False
    positions: dict[str, Any] = {}
    for cid, source in sources.items():
        position = source.position()
        if position is None:
            return False
        positions[cid] = position
    kept: dict[str, dict[str, object]] = {}
    for cid, sink in sinks.items():
        saved = sink.suspend()
        if saved is None:
            discard_suspended(kept)
            return False
        kept[cid] = saved
    record = {
        "run_id": run_id,
        "pipeline_sha256": pipeline_sha256,
        "sources": positions,
        "sinks": kept,
    }
    try:
        state.set(pipeline, COMPONENT, KEY, record)
    except Exception:
        discard_suspended(kept)
        raise
    return True


def discard_suspended(kept: Mapping[str, Mapping[str, object]]) -> None:
    for saved in kept.values():
        Path(str(saved["tmp"])).unlink(missing_ok=True)


def take(
    state: StateStore,
    pipeline: str,
    *,
    pipeline_sha256: str | None,
    sources: Mapping[str, Any],
    sinks: Mapping[str, Any],
    restart: bool,
) -> tuple[Resumed | None, str | None]:
    """Take the pipeline's checkpoint out of the state database (a run that crashes from
    here on leaves none) and hand it to the sources and sinks when it is still sound.

    Returns what the run resumes (or None) and one line for the person running it."""
    record = state.get(pipeline, COMPONENT, KEY)
    if record is None:
        return None, None
    state.delete(pipeline, COMPONENT, KEY)
    previous = str(record.get("run_id"))
    kept: dict[str, dict[str, object]] = record.get("sinks") or {}
    reason = (
        "--restart"
        if restart
        else _problem(record, pipeline_sha256=pipeline_sha256, sources=sources, sinks=sinks)
    )
    if reason is not None:
        discard_suspended(kept)
        return None, f"starting over (not resuming interrupted run {previous}): {reason}"
    for cid, source in sources.items():
        source.resume_from(record["sources"][cid])
    for cid, sink in sinks.items():
        sink.resume_from(kept[cid])
    resumed = Resumed(
        run_id=previous,
        sources={cid: source.resumes_at() for cid, source in sources.items()},
        positions=dict(record["sources"]),
    )
    return resumed, resumed.line()


def _problem(
    record: Mapping[str, Any],
    *,
    pipeline_sha256: str | None,
    sources: Mapping[str, Any],
    sinks: Mapping[str, Any],
) -> str | None:
    """Why the run cannot go on from ``record``, or None."""
    if record.get("pipeline_sha256") != pipeline_sha256 or pipeline_sha256 is None:
        return "the pipeline file changed since"
    if not _resumable(sources, sinks):
        return "the pipeline's sources or sinks cannot resume"
    if set(record["sources"]) != set(sources) or set(record["sinks"]) != set(sinks):
        return "the pipeline's components changed since"
    for cid, source in sources.items():
        problem: str | None = source.resume_problem(record["sources"][cid])
        if problem is not None:
            return f"source {cid}: {problem}"
    for cid, sink in sinks.items():
        problem = sink.resume_problem(record["sinks"][cid])
        if problem is not None:
            return str(problem)
    return None
