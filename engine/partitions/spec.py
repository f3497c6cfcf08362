"""What crosses a process boundary: a partition to run, the run it belongs to, its result.

All three are plain JSON (``to_json``/``from_json``), so a partition can be run by a local
worker process or, later, by a worker that takes it from a broker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PartitionResult", "PartitionSpec", "RunContext"]


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """One part of a run's work: ``source`` reads only ``part``; other sources read nothing."""

    index: int  # 0-based, in the order outputs are joined
    count: int  # partitions of the run
    source: str  # the id of the source that reads this part
    part: dict[str, Any] = field(default_factory=dict)  # the source's own spec; {}: all

    @property
    def id(self) -> str:
        """The partition's name in ``{partition}`` paths, dead-letter files and the trail."""
        return f"{self.index:04d}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartitionSpec:
        return cls(int(data["index"]), int(data["count"]), str(data["source"]), data["part"])


@dataclass(frozen=True, slots=True)
class RunContext:
    """The run a partition belongs to."""

    run_id: str
    workspace: str
    audit: bool = True  # False: --no-audit
    #: file sinks leave their outputs for the run to publish (False: publish them itself)
    hand_over: bool = True
    #: the pipeline file's SHA-256 the run planned with: a partition refuses another
    pipeline_sha256: str | None = None
    #: the how-manieth time this partition runs, and whether the broker redelivered it
    attempt: int = 1
    redelivered: bool = False
    #: the pid of the process that publishes what is handed over (default: the parent of
    #: the partition's process), which the temp names carry: no later run removes them
    #: while it lives
    publisher: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunContext:
        return cls(
            str(data["run_id"]),
            str(data["workspace"]),
            bool(data.get("audit", True)),
            bool(data.get("hand_over", True)),
            data.get("pipeline_sha256"),
            int(data.get("attempt", 1)),
            bool(data.get("redelivered", False)),
            data.get("publisher"),
        )


@dataclass(slots=True)
class PartitionResult:
    """How one partition went, and what the run needs from it to finish."""

    partition: str
    index: int
    outcome: str  # "success" | "failure" | "interrupted"
    error: str | None = None
    duration_s: float = 0.0
    #: per component: records_in, records_out, rejected, batches, errors, retries
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    dead_letters: int = 0
    dead_letter_path: str | None = None
    #: the finished outputs file sinks handed over, per sink id
    outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: what the partition's source needs committed (``Source.partition_outcome``)
    progress: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartitionResult:
        return cls(**data)
