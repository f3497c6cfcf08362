"""The dead-letter sink: failed records with the reason, stage, component and time (JSON Lines)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from engine.records import Rejected

__all__ = ["DeadLetters"]


class DeadLetters:
    """Appends rejected records to one file per run, opened on first use: clean runs leave none."""

    def __init__(self, path: Path | None, *, pipeline: str, run_id: str) -> None:
        self.path = path  # None: keep in memory (dry runs write nothing)
        self.pipeline = pipeline
        self.run_id = run_id
        self.count = 0
        self.kept: list[dict[str, Any]] = []
        self._stream: IO[bytes] | None = None

    def write(self, component: str, stage: str, rejected: list[Rejected]) -> None:
        now = datetime.now(UTC).isoformat()
        lines = []
        for item in rejected:
            entry = {
                "time": now,
                "pipeline": self.pipeline,
                "run_id": self.run_id,
                "component": component,
                "stage": stage,
                "reason": item.reason,
                "location": item.location,
                "record": item.record,
            }
            if self.path is None:
                self.kept.append(entry)
            else:
                lines.append(orjson.dumps(entry, default=str) + b"\n")
        self.count += len(rejected)
        if lines:
            if self._stream is None:
                assert self.path is not None
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._stream = self.path.open("ab")
            self._stream.write(b"".join(lines))
            self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
