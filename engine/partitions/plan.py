"""Planning a run's partitions: each source says how its work splits."""

from __future__ import annotations

from typing import Any

from engine.components.base import Role, Sink, Source
from engine.partitions.spec import PartitionSpec
from engine.runtime.runner import Runner

__all__ = ["plan_partitions"]


async def plan_partitions(
    runner: Runner, workers: int, *, notify: Any = None
) -> list[PartitionSpec]:
    """The partitions of ``runner``'s run, sources in pipeline order: those a source
    splits its work into, or one reading it all. When a sink cannot join outputs written
    in pieces, every source is one partition (``notify`` is told why)."""
    plan = runner.plan
    joinable = True
    for cid in plan.order:
        if plan.nodes[cid].role is Role.SINK:
            sink: Sink[Any] = runner.component(cid)
            if not sink.can_join():
                joinable = False
                if notify is not None:
                    notify(
                        f"sink {cid} cannot join outputs written in partitions (put "
                        "{partition} in its path): each source is read by one process"
                    )
    found: list[tuple[str, dict[str, Any]]] = []
    for cid in plan.order:
        if plan.nodes[cid].role is not Role.SOURCE:
            continue
        source: Source[Any] = runner.component(cid)
        parts = None
        if joinable:
            await source.open()
            try:
                parts = await source.partitions(workers)
            finally:
                await source.close()
        found.extend((cid, part) for part in (parts or [{}]))
    return [PartitionSpec(index, len(found), cid, part) for index, (cid, part) in enumerate(found)]
