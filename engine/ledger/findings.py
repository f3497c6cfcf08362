"""What verification finds: problems, per-chain and whole-store reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_PROBLEMS_PER_CHAIN",
    "ChainReport",
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "VerifyStatus",
    "compress_numbers",
    "describe_event",
]

MAX_PROBLEMS_PER_CHAIN = 50


# The first 12 StoredEvent fields: columns copied from the signed body.
class ProblemKind(StrEnum):
    MODIFIED = "modified"  # MAC mismatch under the event's own key
    WRONG_KEY = "wrong_key"  # no supplied key verifies it (forged, or the wrong key)
    COLUMN_MISMATCH = "column_mismatch"  # a queryable column differs from the signed body
    MALFORMED = "malformed"  # the body is not a JSON event
    MISSING = "missing"  # sequence numbers absent (deleted)
    REORDERED = "reordered"  # an event appears out of sequence order
    BROKEN_LINK = "broken_link"  # prev_mac differs from the previous event's MAC
    TRUNCATED = "truncated"  # fewer events than a checkpoint or the chain head states
    ROOT_MISMATCH = "root_mismatch"  # the tree differs from a signed checkpoint
    CHECKPOINT_SIGNATURE = "checkpoint_signature"
    CHECKPOINT_UNREADABLE = "checkpoint_unreadable"
    UNSIGNED_PRUNE = "unsigned_prune"  # a retention anchor no signed event vouches for


class VerifyStatus(StrEnum):
    INTACT = "intact"
    TAMPERED = "tampered"
    UNVERIFIABLE = "unverifiable"  # no trail, or signed with keys that were not supplied


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    producer: str | None
    message: str
    seq: int | None = None
    event_id: str | None = None
    # The event's position in stored order (1-based), which orders the report.
    at: int | None = field(default=None, compare=False, repr=False)
    # WRONG_KEY: the key id the event names, which no supplied key has.
    key_id: str | None = field(default=None, compare=False)

    @property
    def unknown_key(self) -> bool:
        """An event signed with a key that was not supplied: no verdict on it."""
        return self.kind is ProblemKind.WRONG_KEY and self.key_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "producer": self.producer,
            "seq": self.seq,
            "event_id": self.event_id,
            "message": self.message,
        }


@dataclass
class ChainReport:
    producer: str
    events: int = 0
    last_seq: int = 0
    missing: list[int] = field(default_factory=list)
    truncated: bool = False
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    suppressed: int = 0
    # How many of the suppressed are other than events signed with a key not supplied.
    suppressed_other: int = 0
    # The position of the event being checked; problems added without one get it.
    at: int = field(default=0, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        if problem.at is None:
            problem = replace(problem, at=self.at)
        if len(self.problems) < MAX_PROBLEMS_PER_CHAIN:
            self.problems.append(problem)
        else:
            self.suppressed += 1
            if not problem.unknown_key:
                self.suppressed_other += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "producer": self.producer,
            "ok": self.ok,
            "events": self.events,
            "last_seq": self.last_seq,
            "missing_seqs": self.missing,
            "truncated": self.truncated,
            "checkpoints_checked": self.checkpoints_checked,
            "problems": [p.to_dict() for p in self.problems],
            "more_problems": self.suppressed,
        }


@dataclass
class VerifyReport:
    chains: list[ChainReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # not tied to one chain
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.chains)

    @property
    def events(self) -> int:
        return sum(c.events for c in self.chains)

    @property
    def unknown_keys(self) -> list[str]:
        """Key ids that events name and no supplied key has."""
        return sorted({p.key_id for p in self.all_problems() if p.key_id is not None})

    @property
    def status(self) -> VerifyStatus:
        """``intact``; ``unverifiable`` when there is nothing to verify or the only
        problems are events signed with keys not supplied (no verdict either way);
        else ``tampered``."""
        problems = self.all_problems()
        if not problems:
            return VerifyStatus.INTACT if self.chains else VerifyStatus.UNVERIFIABLE
        if all(p.unknown_key for p in problems) and not any(
            c.suppressed_other for c in self.chains
        ):
            return VerifyStatus.UNVERIFIABLE
        return VerifyStatus.TAMPERED

    def all_problems(self) -> list[Problem]:
        return [*self.problems, *(p for c in self.chains for p in c.problems)]

    @property
    def first_broken(self) -> Problem | None:
        """The first problem that names an event, else the first problem."""
        problems = self.all_problems()
        for problem in problems:
            if problem.event_id is not None:
                return problem
        return problems[0] if problems else None

    def to_dict(self) -> dict[str, Any]:
        first = self.first_broken
        return {
            "ok": self.ok,
            "status": self.status.value,
            "unknown_keys": self.unknown_keys,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "first_broken": first.to_dict() if first else None,
            "truncated": any(c.truncated for c in self.chains),
            "chains": [c.to_dict() for c in self.chains],
            "problems": [p.to_dict() for p in self.problems],
        }


def describe_event(seq: int, event_id: str | None) -> str:
    return f"event #{seq} ({event_id})" if event_id else f"event #{seq}"


def compress_numbers(numbers: Sequence[int]) -> str:
    """1,2,3,7 -> '1-3, 7'."""
    parts: list[str] = []
    start = prev = None
    for n in numbers:
        if start is None:
            start = prev = n
        elif prev is not None and n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if start != prev else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if start != prev else str(start))
    return ", ".join(parts)
