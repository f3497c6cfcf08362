"""Planning a run's partitions: each source says how its work splits."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import Any, overload

from engine.components.base import Role, Sink, Source
from engine.partitions.spec import PartitionSpec
from engine.runtime.runner import Runner

__all__ = ["plan_partitions"]


class _Specs(Sequence[PartitionSpec]):
    """The partitions of a run, sources in pipeline order; each source's parts are asked
    for as a partition is, so that a source that finds its parts as it goes (a big file
    cut into ranges) is read while the later ones are still being found."""

    def __init__(self, sources: list[tuple[str, Sequence[dict[str, Any]]]]) -> None:
        self._sources = sources
        self._firsts = list(itertools.accumulate((len(p) for _, p in sources), initial=0))

    def __len__(self) -> int:
        return self._firsts[-1]

    @overload
    def __getitem__(self, index: int) -> PartitionSpec: ...
    @overload
    def __getitem__(self, index: slice) -> list[PartitionSpec]: ...
    def __getitem__(self, index: int | slice) -> PartitionSpec | list[PartitionSpec]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        index = range(len(self))[index]  # an IndexError past either end
        which = bisect.bisect_right(self._firsts, index) - 1
        cid, parts = self._sources[which]
        return PartitionSpec(index, len(self), cid, parts[index - self._firsts[which]])


async def plan_partitions(
    runner: Runner, workers: int, *, notify: Any = None
) -> Sequence[PartitionSpec]:
    """The partitions of ``runner``'s run, sources in pipeline order: those a source
    splits its work into, or one reading it all. When a sink cannot join outputs written
    in pieces, every source is one partition (``notify`` is told why). The sequence may
    find partitions as they are asked for (:meth:`Source.partitions`)."""
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
    found: list[tuple[str, Sequence[dict[str, Any]]]] = []
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
        found.append((cid, parts or [{}]))
    return _Specs(found)
