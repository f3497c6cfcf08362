"""The live progress of a run on a terminal: per component, records and records/s; for a
source that knows its input's size, the share read and the time left."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from engine.runtime.observer import StageStats

__all__ = ["ProgressView", "live_progress", "progress_text"]


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _bytes(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB"):
        n /= 1000
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} GB"


def progress_text(stats: StageStats, elapsed: float) -> str:
    """``12,000 records, 4,000 records/s`` and, for a sized source,
    ``, 25% of 4.0 MB, ETA 0:00:09``."""
    rate = stats.records_out / elapsed if elapsed > 0 else 0.0
    text = f"{stats.records_out:,} records, {rate:,.0f} records/s"
    if stats.rejected:
        text += f", {stats.rejected:,} rejected"
    total = stats.bytes_total
    if total:
        done = min(stats.bytes_read, total)
        text += f", {done / total:.0%} of {_bytes(total)}"
        if 0 < done < total and elapsed > 0:
            text += f", ETA {_duration(elapsed * (total - done) / done)}"
    return text


class ProgressView:
    """What the display shows, from the runtime's statistics and a clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.stats: dict[str, StageStats] = {}

    def update(self, stats: dict[str, StageStats]) -> None:
        self.stats = stats

    def __rich__(self) -> RenderableType:
        elapsed = self.clock() - self.started
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for cid, s in self.stats.items():
            bar: RenderableType = ""
            if s.bytes_total:
                bar = ProgressBar(total=s.bytes_total, completed=s.bytes_read, width=20)
            table.add_row(escape(cid), bar, progress_text(s, elapsed))
        return Group(table)


@contextmanager
def live_progress(console: Console) -> Iterator[Callable[[dict[str, StageStats]], None]]:
    """A display refreshed a few times a second, gone when the run ends."""
    view = ProgressView()
    with Live(view, console=console, transient=True, refresh_per_second=4):
        yield view.update
