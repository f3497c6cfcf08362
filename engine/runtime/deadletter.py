"""The dead-letter sink: failed records with the reason, stage, component and time (JSON Lines)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from engine.records import Batch, Rejected
from engine.state import DeadLetterRow

if TYPE_CHECKING:
    from engine.model import DeadLetterSettings
    from engine.runtime.plan import Plan
    from engine.state import StateStore

__all__ = ["DeadLetters", "letters_path", "locate", "rejection_breach"]


def letters_path(plan: Plan, workspace: Path, run_id: str, partition: str | None = None) -> Path:
    """Where a run's dead letters go: ``[dead_letter] path`` (relative to the pipeline
    file) or the workspace's ``dead_letter/<pipeline>/<run_id>.jsonl``; one partition's
    beside it, with the partition before the extension."""
    spec = plan.spec
    template = spec.dead_letter.path
    if template:
        path = Path(template.format(pipeline=plan.name, run_id=run_id))
        if not path.is_absolute() and spec.file is not None:
            path = spec.file.resolve().parent / path
    else:
        path = workspace / "dead_letter" / plan.name / f"{run_id}.jsonl"
    if partition is not None:
        path = path.with_name(f"{path.stem}.{partition}{path.suffix}")
    return path


def locate(rejected: list[Rejected], batch: Batch, *, first: int, origin: str) -> list[Rejected]:
    """Name each rejected record of ``batch`` that has no location yet ``origin N``, N its
    number counting from ``first`` + 1."""
    index = {id(record): i for i, record in enumerate(batch)}
    for item in rejected:
        i = index.get(id(item.record))
        if item.location is None and i is not None:
            item.location = f"{origin} {first + i + 1}"
    return rejected


def rejection_breach(
    settings: DeadLetterSettings, *, read: int, rejected: int, file: Path | None
) -> str | None:
    """Why a run that rejected ``rejected`` of ``read`` records fails (None: it need not)."""
    limit = settings.rejected_limit(read)
    if limit is None or rejected <= limit:
        return None
    where = f"; dead letters in {file}" if file is not None else ""
    if settings.max_rejected is None:
        return (
            f"all {read} records read were rejected{where} "
            "(set [dead_letter] max_rejected to allow rejections)"
        )
    return (
        f"{rejected} of {read} records read were rejected, more than "
        f"[dead_letter] max_rejected = {json.dumps(settings.max_rejected)}{where}"
    )


class DeadLetters:
    """Appends rejected records to one file per run, opened on first use: clean runs leave
    none. With a ``store`` they are rows of its dead-letter table instead."""

    def __init__(
        self,
        path: Path | None,
        *,
        pipeline: str,
        run_id: str,
        store: StateStore | None = None,
    ) -> None:
        self.path = path  # None: keep in memory (dry runs write nothing)
        self.store = store
        self.pipeline = pipeline
        self.run_id = run_id
        self.count = 0
        self.kept: list[dict[str, Any]] = []
        self._stream: IO[bytes] | None = None

    @classmethod
    def of_run(
        cls,
        plan: Plan,
        workspace: Path,
        run_id: str,
        *,
        store: StateStore | None,
        dry_run: bool,
        partition: str | None = None,
    ) -> DeadLetters:
        """The dead letters of one run of ``plan`` (or of one partition of it): the
        ``[dead_letter] path`` file (default in the workspace), the state store's table
        (``[state] dead_letters = "store"``), or kept in memory by a dry run."""
        name = plan.name
        if dry_run:
            return cls(None, pipeline=name, run_id=run_id)
        if plan.spec.state.dead_letters == "store" and store is not None:
            return cls(None, pipeline=name, run_id=run_id, store=store)
        return cls(letters_path(plan, workspace, run_id, partition), pipeline=name, run_id=run_id)

    @property
    def written(self) -> Path | None:
        """The file holding this run's dead letters, once one was written."""
        return self.path if self.path is not None and self.count else None

    def write(self, component: str, stage: str, rejected: list[Rejected]) -> None:
        now = datetime.now(UTC).isoformat()
        if self.store is not None:
            self.store.add_dead_letters(
                DeadLetterRow(
                    self.pipeline,
                    self.run_id,
                    now,
                    component,
                    stage,
                    item.reason,
                    item.location,
                    item.record,
                )
                for item in rejected
            )
            self.count += len(rejected)
            return
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
