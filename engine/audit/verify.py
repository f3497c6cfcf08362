"""Verification: walk each chain, check every MAC and link, and compare with checkpoints.

Finds a changed field (MAC mismatch, or an indexed column that disagrees with the signed
body), deleted events (sequence gaps and broken links), reordering, forged insertions
(MACs that no known key produces), a wrong key, truncation of the tail (fewer events
than a checkpoint states, or than the chain head records), histories rewritten under a
stolen HMAC key (Merkle root differs from a checkpoint), and bad checkpoint signatures.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import operator
import os
import threading
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from engine.audit.canonical import canonical_json
from engine.audit.checkpoint import Checkpoint, checkpoint_files, read_checkpoint
from engine.audit.errors import AuditError, CheckpointError
from engine.audit.events import GENESIS_MAC
from engine.audit.keys import HmacKeyring, PublicKeys, hmac_sha256
from engine.audit.merkle import CompactRange
from engine.audit.schema import INDEXED_FIELDS, PruneAnchor
from engine.audit.store import AuditStore
from engine.audit.trail import RETENTION_ACTION

__all__ = [
    "ChainReport",
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "iter_jsonl",
    "load_checkpoint_set",
    "verify_chain",
    "verify_jsonl",
    "verify_store",
]

MAX_PROBLEMS_PER_CHAIN = 50
# The first 12 StoredEvent fields: columns copied from the signed body.
_CHECKED = ("producer", "seq", *INDEXED_FIELDS)


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


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    producer: str | None
    message: str
    seq: int | None = None
    event_id: str | None = None
    # The event's position in stored order (1-based), which orders the report.
    at: int | None = field(default=None, compare=False, repr=False)

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
            "events": self.events,
            "checkpoints": self.checkpoints,
            "first_broken": first.to_dict() if first else None,
            "truncated": any(c.truncated for c in self.chains),
            "chains": [c.to_dict() for c in self.chains],
            "problems": [p.to_dict() for p in self.problems],
        }


_body_columns = operator.itemgetter(*_CHECKED)


def _columns_differ(stored: Sequence[Any], data: dict[str, Any]) -> bool:
    try:
        return bool(tuple(stored[:12]) != _body_columns(data))
    except KeyError:
        return True


def _describe(seq: int, event_id: str | None) -> str:
    return f"event #{seq} ({event_id})" if event_id else f"event #{seq}"


def _compress(numbers: Sequence[int]) -> str:
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


class _Walk:
    """The state of one chain's verification, fed events in stored order.

    The expensive part (parsing, MACs, leaf hashes) of a long chain is split across
    processes (:func:`verify_store`): each segment is walked by its own ``_Walk``,
    which leaves its first link unchecked (``boundary``) and collects its leaf hashes
    instead of building the tree; the first segment's walk then joins them in order.
    """

    def __init__(
        self,
        producer: str,
        keyring: HmacKeyring,
        checkpoints: Sequence[Checkpoint] = (),
        *,
        anchor: PruneAnchor | None = None,
        segment: bool = False,
    ) -> None:
        self.report = ChainReport(producer)
        self.keyring = keyring
        self.anchor = anchor
        self.pruned = anchor.seq if anchor is not None else 0
        self.expected = self.pruned + 1
        self.prev_mac = anchor.mac if anchor is not None else GENESIS_MAC
        self.compact = anchor.frontier.copy() if anchor is not None else CompactRange()
        # Checkpoints inside the pruned prefix can no longer be recomputed.
        self.pending_cps = sorted(
            (c for c in checkpoints if c.tree_size > self.pruned), key=lambda c: c.tree_size
        )
        self.cp_index = 0
        self.anchor_signed = self.pruned == 0
        self.seen_gaps: list[int] = []
        self.seen: set[int] = set()
        self.count = 0
        self.last_seq = 0
        # A segment: its first event's (seq, event_id, prev_mac), and its leaf hashes.
        self.segment = segment
        self.first: tuple[int, str, str] | None = None
        self.leaves: bytearray | None = bytearray() if segment else None
        self.leaf_seqs = array("q")
        self.leaf_ids: list[str] = []
        self.leaf_ordinals = array("q")
        self._key_cache: dict[str, list[Callable[[bytes], bytes]]] = {}

    def _macs(self, key_id: str) -> list[Callable[[bytes], bytes]]:
        found = self._key_cache.get(key_id)
        if found is None:
            found = self._key_cache[key_id] = [
                hmac_sha256(k) for k in self.keyring.candidates(key_id)
            ]
        return found

    def feed(self, events: Iterable[tuple[bytes, str, Sequence[Any] | None]]) -> None:
        """Check every event: its MAC, its columns, its number and its link."""
        report = self.report
        producer = report.producer
        keyring = self.keyring
        expected = self.expected
        prev_mac = self.prev_mac
        compact = self.compact
        append_leaf = compact.append
        leaves = self.leaves
        leaf_seq = self.leaf_seqs.append
        pending_cps = self.pending_cps
        next_cp = pending_cps[self.cp_index].tree_size if self.cp_index < len(pending_cps) else -1
        seen_gaps = self.seen_gaps
        seen = self.seen
        sha256 = hashlib.sha256
        fromhex = bytes.fromhex
        loads = orjson.loads
        macs_for = self._macs
        count = self.count
        last_seq = self.last_seq
        segment = self.segment
        unlinked = segment and self.first is None
        leaf_id = self.leaf_ids.append
        leaf_ordinal = self.leaf_ordinals.append

        for body, mac, stored in events:
            count += 1
            report.at = count
            try:
                data = loads(body)
                seq = data["seq"]
                event_id = data["event_id"]
                event_prev = data["prev_mac"]
                key_id = data["key_id"]
                message = fromhex(event_prev) + body
                if type(seq) is not int:
                    raise TypeError("seq")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                where = stored[1] if stored is not None else count
                report.add(
                    Problem(
                        ProblemKind.MALFORMED,
                        producer,
                        f"stored event #{where} is not a signed event body",
                        seq=where,
                        event_id=stored[2] if stored is not None else None,
                    )
                )
                continue

            macs = macs_for(key_id)
            if len(macs) == 1:
                intact = macs[0](message).hex() == mac
            else:
                intact = any(m(message).hex() == mac for m in macs)
            if not intact:
                name = _describe(seq, event_id)
                if key_id in keyring.keys:
                    report.add(
                        Problem(
                            ProblemKind.MODIFIED,
                            producer,
                            f"{name}: MAC mismatch under key {key_id}: the event was modified "
                            "or forged",
                            seq,
                            event_id,
                        )
                    )
                else:
                    report.add(
                        Problem(
                            ProblemKind.WRONG_KEY,
                            producer,
                            f"{name}: signed with key {key_id}, which no supplied key verifies: "
                            "forged, or verified with the wrong key",
                            seq,
                            event_id,
                        )
                    )

            if stored is not None and _columns_differ(stored, data):
                changed = [f for i, f in enumerate(_CHECKED) if stored[i] != data.get(f)]
                report.add(
                    Problem(
                        ProblemKind.COLUMN_MISMATCH,
                        producer,
                        f"{_describe(seq, event_id)}: stored column(s) {', '.join(changed)} "
                        "differ from the signed event (modified)",
                        seq,
                        event_id,
                    )
                )

            if segment:
                # Numbers are checked by the walk that joins the segment; so is the link
                # of the segment's first event.
                if unlinked:
                    self.first = (seq, event_id, event_prev)
                    unlinked = False
                elif event_prev != prev_mac:
                    report.add(_broken_link(producer, seq, event_id))
            else:
                if seq != expected:
                    if seq > expected:
                        seen_gaps.extend(range(expected, seq))
                    else:
                        report.add(_reordered(producer, seq, event_id, expected))
                if event_prev != prev_mac:
                    report.add(_broken_link(producer, seq, event_id))
            if seen_gaps:
                seen.add(seq)
            if not self.anchor_signed and intact and data.get("action") == RETENTION_ACTION:
                self._note_retention(data)
            prev_mac = mac
            if seq >= expected:
                expected = seq + 1
            if seq > last_seq:
                last_seq = seq

            leaf = sha256(b"\x00" + body).digest()
            if leaves is not None:
                leaves += leaf
                leaf_seq(seq)
                leaf_id(event_id)
                leaf_ordinal(count)
                continue
            append_leaf(leaf)
            if compact.size == next_cp:
                next_cp = self._check_checkpoints(seq, event_id)

        self.expected = expected
        self.prev_mac = prev_mac
        self.count = count
        self.last_seq = last_seq

    def _note_retention(self, data: dict[str, Any]) -> None:
        details = data.get("details") or {}
        anchor = self.anchor
        self.anchor_signed = (
            details.get("pruned_through") == self.pruned
            and anchor is not None
            and details.get("anchor_mac") == anchor.mac
        )

    def _check_checkpoints(self, seq: int, event_id: str | None) -> int:
        """Compare the tree with the checkpoints of its size; the next size to check."""
        compact = self.compact
        pending = self.pending_cps
        while self.cp_index < len(pending) and pending[self.cp_index].tree_size <= compact.size:
            cp = pending[self.cp_index]
            self.cp_index += 1
            if cp.tree_size == compact.size:
                self.report.checkpoints_checked += 1
                if compact.root().hex() != cp.root:
                    self.report.add(
                        Problem(
                            ProblemKind.ROOT_MISMATCH,
                            self.report.producer,
                            f"the first {cp.tree_size} events do not hash to the root signed "
                            f"in {cp.label}: history was rewritten (last event "
                            f"{_describe(seq, event_id)})",
                            seq,
                            event_id,
                        )
                    )
        return pending[self.cp_index].tree_size if self.cp_index < len(pending) else -1

    def join(self, part: _Segment) -> None:
        """Continue with a segment walked elsewhere, the next one in stored order: its
        numbers and first link are checked here, its leaves join the tree."""
        report = self.report
        producer = report.producer
        offset = self.count
        if part.first is not None:
            seq, event_id, event_prev = part.first
            report.at = offset + 1
            if event_prev != self.prev_mac:
                report.add(_broken_link(producer, seq, event_id))
        for problem in part.problems:
            report.add(replace(problem, at=offset + (problem.at or 0)))
        report.suppressed += part.suppressed
        self.anchor_signed = self.anchor_signed or part.anchor_signed
        expected = self.expected
        seen_gaps = self.seen_gaps
        seen = self.seen
        compact = self.compact
        pending = self.pending_cps
        next_cp = pending[self.cp_index].tree_size if self.cp_index < len(pending) else -1
        leaves = part.leaves
        seqs = array("q")
        seqs.frombytes(part.leaf_seqs)
        ordinals = array("q")
        ordinals.frombytes(part.leaf_ordinals)
        for index, seq in enumerate(seqs):
            report.at = offset + ordinals[index]
            if seq != expected:
                if seq > expected:
                    seen_gaps.extend(range(expected, seq))
                else:
                    report.add(_reordered(producer, seq, part.leaf_ids[index], expected))
            if seen_gaps:
                seen.add(seq)
            if seq >= expected:
                expected = seq + 1
            compact.append(leaves[index * 32 : index * 32 + 32])
            if compact.size == next_cp:
                next_cp = self._check_checkpoints(seq, part.leaf_ids[index])
        self.expected = expected
        self.count += part.count
        if part.count:
            self.prev_mac = part.last_mac
            self.last_seq = max(self.last_seq, part.last_seq)

    def as_segment(self) -> _Segment:
        """What the first walk needs of this one (sent back from a worker process)."""
        report = self.report
        return _Segment(
            first=self.first,
            problems=report.problems,
            suppressed=report.suppressed,
            anchor_signed=self.anchor_signed and self.pruned > 0,
            leaves=bytes(self.leaves or b""),
            leaf_seqs=self.leaf_seqs.tobytes(),
            leaf_ids=self.leaf_ids,
            leaf_ordinals=self.leaf_ordinals.tobytes(),
            count=self.count,
            last_mac=self.prev_mac,
            last_seq=self.last_seq,
        )

    def finish(self, head_seq: int | None = None) -> ChainReport:
        """The report, with what only the whole chain shows: gaps, truncation, pruning."""
        report = self.report
        # Event by event, in the order the checks run (segments joined report late).
        report.problems.sort(key=_problem_order)
        producer = report.producer
        compact = self.compact
        report.events = self.count
        report.last_seq = self.last_seq
        anchor = self.anchor
        anchor_signed = self.anchor_signed
        if anchor is not None and not anchor.intact:
            anchor_signed = False
        if not anchor_signed:
            report.add(
                Problem(
                    ProblemKind.UNSIGNED_PRUNE,
                    producer,
                    f"the store says events 1-{self.pruned} were removed by retention, but no "
                    "signed retention event records that anchor: events were deleted from the "
                    "start",
                )
            )
        seen = self.seen
        report.missing = [n for n in self.seen_gaps if n not in seen]
        if report.missing:
            report.add(
                Problem(
                    ProblemKind.MISSING,
                    producer,
                    f"missing sequence numbers: {_compress(report.missing)}",
                )
            )
        reordered = sorted(n for n in set(self.seen_gaps) if n in seen)
        if reordered:
            report.add(
                Problem(
                    ProblemKind.REORDERED,
                    producer,
                    f"events stored out of order: {_compress(reordered)}",
                )
            )
        beyond = [cp for cp in self.pending_cps[self.cp_index :] if cp.tree_size > compact.size]
        report.checkpoints_checked += len(beyond)
        cut = [cp for cp in beyond if cp.tree_size > report.last_seq]
        if cut:
            biggest = cut[-1]
            report.truncated = True
            report.add(
                Problem(
                    ProblemKind.TRUNCATED,
                    producer,
                    f"tail truncated: {biggest.label} records {biggest.tree_size} events, the "
                    f"trail ends at event #{report.last_seq} (events {report.last_seq + 1}-"
                    f"{biggest.tree_size} are gone)",
                )
            )
        for cp in beyond:
            if cp.tree_size <= report.last_seq:
                report.add(
                    Problem(
                        ProblemKind.ROOT_MISMATCH,
                        producer,
                        f"{cp.label} (tree size {cp.tree_size}) cannot be reproduced: the trail "
                        f"holds only {compact.size} events",
                    )
                )
        if head_seq is not None and head_seq > report.last_seq:
            report.truncated = True
            report.add(
                Problem(
                    ProblemKind.TRUNCATED,
                    producer,
                    f"tail truncated: the chain head records event #{head_seq}, the last "
                    f"stored event is #{report.last_seq}",
                )
            )
        return report


@dataclass
class _Segment:
    """A segment's walk, as the first walk joins it."""

    first: tuple[int, str, str] | None
    problems: list[Problem]
    suppressed: int
    anchor_signed: bool
    leaves: bytes
    leaf_seqs: bytes  # array("q") of each leaf's sequence number
    leaf_ids: list[str]  # and its event id
    leaf_ordinals: bytes  # and its position in the segment (array("q"))
    count: int
    last_mac: str
    last_seq: int


_CHECK_ORDER = {
    kind: rank
    for rank, kind in enumerate(
        [
            ProblemKind.MALFORMED,
            ProblemKind.MODIFIED,
            ProblemKind.WRONG_KEY,
            ProblemKind.COLUMN_MISMATCH,
            ProblemKind.REORDERED,
            ProblemKind.BROKEN_LINK,
            ProblemKind.ROOT_MISMATCH,
        ]
    )
}


def _problem_order(problem: Problem) -> tuple[int, int]:
    return (problem.at or 0, _CHECK_ORDER.get(problem.kind, 99))


def _reordered(producer: str, seq: int, event_id: str | None, expected: int) -> Problem:
    return Problem(
        ProblemKind.REORDERED,
        producer,
        f"{_describe(seq, event_id)} appears after event #{expected - 1}: out of order or "
        "duplicated",
        seq,
        event_id,
    )


def _broken_link(producer: str, seq: int, event_id: str | None) -> Problem:
    return Problem(
        ProblemKind.BROKEN_LINK,
        producer,
        f"{_describe(seq, event_id)}: prev_mac does not match the MAC of the event stored "
        "before it (an event was deleted, inserted or moved before it)",
        seq,
        event_id,
    )


def verify_chain(
    producer: str,
    events: Iterable[tuple[bytes, str, Sequence[Any] | None]],
    keyring: HmacKeyring,
    checkpoints: Sequence[Checkpoint] = (),
    *,
    head_seq: int | None = None,
    anchor: PruneAnchor | None = None,
) -> ChainReport:
    """Verify one chain given ``(body, mac, stored row or None)`` in stored order.

    A stored row is a sequence in :class:`StoredEvent` field order; its queryable
    columns are checked against the signed body. ``checkpoints`` must already have
    valid signatures; ``head_seq`` is the chain head's number as the store records it
    (a second, weaker witness of truncation).
    """
    walk = _Walk(producer, keyring, checkpoints, anchor=anchor)
    walk.feed(events)
    return walk.finish(head_seq)


def load_checkpoint_set(
    paths: Iterable[Path], public_keys: PublicKeys
) -> tuple[dict[str, list[Checkpoint]], list[Problem], int]:
    """Read checkpoints, keeping those whose signature verifies; report the others."""
    good: dict[str, list[Checkpoint]] = defaultdict(list)
    problems: list[Problem] = []
    count = 0
    for path in checkpoint_files(paths):
        count += 1
        try:
            cp = read_checkpoint(path)
        except CheckpointError as exc:
            problems.append(Problem(ProblemKind.CHECKPOINT_UNREADABLE, None, str(exc)))
            continue
        if not cp.signature_valid(public_keys):
            why = (
                "the signature does not verify"
                if cp.key_id in public_keys
                else f"signed by unknown key {cp.key_id}"
            )
            problems.append(
                Problem(
                    ProblemKind.CHECKPOINT_SIGNATURE,
                    cp.producer,
                    f"checkpoint {path}: {why} (corrupted or forged checkpoint)",
                )
            )
            continue
        good[cp.producer].append(cp)
    return dict(good), problems, count


def _store_events(
    store: AuditStore, producer: str, *, after: int = -1, upto: int | None = None
) -> Iterator[tuple[bytes, str, Sequence[Any]]]:
    for row in store.iter_chain_raw(producer, after=after, upto=upto):
        body = row[13]
        if type(body) is not bytes:  # a tamperer may store text; verify what is there
            body = body.encode() if isinstance(body, str) else bytes(body)
        yield body, row[12], row


# Chains at least this long are verified in several processes (one per core, each
# walking at least this many events).
PARALLEL_MIN_EVENTS = 50_000


def _workers(events: int, wanted: int | None) -> int:
    if wanted is not None:
        return max(1, wanted)
    # Forking a process that runs other threads can deadlock the child: walk alone then.
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, events // PARALLEL_MIN_EVENTS, 8))


def _walk_segment(
    conn: Connection,
    store: AuditStore,
    producer: str,
    keyring: HmacKeyring,
    anchor: PruneAnchor | None,
    after: int,
    upto: int | None,
) -> None:
    """In a forked worker: walk the events numbered after..upto and send the segment."""
    try:
        store.forked()
        walk = _Walk(producer, keyring, anchor=anchor, segment=True)
        walk.feed(_store_events(store, producer, after=after, upto=upto))
        conn.send(walk.as_segment())
    except BaseException as exc:
        conn.send(AuditError(f"verifying {producer} events {after + 1}-{upto or ''}: {exc}"))
    finally:
        conn.close()


def _verify_stored_chain(
    store: AuditStore,
    producer: str,
    keyring: HmacKeyring,
    checkpoints: Sequence[Checkpoint],
    *,
    head_seq: int | None,
    anchor: PruneAnchor | None,
    workers: int | None,
) -> ChainReport:
    first = anchor.seq if anchor is not None else 0
    count = (head_seq or 0) - first
    jobs = _workers(count, workers) if head_seq is not None else 1
    walk = _Walk(producer, keyring, checkpoints, anchor=anchor)
    if jobs <= 1 or count < jobs:
        walk.feed(_store_events(store, producer))
        return walk.finish(head_seq)
    # Segments by sequence number; the last also takes anything stored past the head.
    bounds = [first + count * i // jobs for i in range(jobs)]
    context = multiprocessing.get_context("fork")
    started: list[tuple[Any, Connection]] = []
    try:
        for i in range(1, jobs):
            upto = bounds[i + 1] if i + 1 < jobs else None
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_walk_segment,
                args=(send, store, producer, keyring, anchor, bounds[i], upto),
                daemon=True,
            )
            process.start()
            send.close()
            started.append((process, receive))
        walk.feed(_store_events(store, producer, upto=bounds[1]))
        for process, receive in started:
            try:
                part = receive.recv()
            except EOFError:
                raise AuditError(
                    f"a verification worker for {producer} exited (code {process.exitcode})"
                ) from None
            if isinstance(part, BaseException):
                raise part
            walk.join(part)
    finally:
        for process, receive in started:
            receive.close()
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return walk.finish(head_seq)


def verify_store(
    store: AuditStore,
    keyring: HmacKeyring,
    *,
    checkpoint_paths: Iterable[Path] = (),
    public_keys: PublicKeys | None = None,
    producers: Sequence[str] | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify every chain of a store (or the named ones) against the checkpoints.

    A chain of at least :data:`PARALLEL_MIN_EVENTS` events is split into segments
    walked by forked worker processes, one per core (``workers`` sets the number;
    1 walks every chain in this process). The report is the same either way.
    """
    report = VerifyReport()
    checkpoints, problems, report.checkpoints = load_checkpoint_set(
        checkpoint_paths, public_keys or PublicKeys()
    )
    report.problems.extend(problems)
    heads = store.heads()
    anchors = store.anchors()
    names = sorted(set(store.producers()) | set(checkpoints))
    for producer in names:
        if producers is not None and producer not in producers:
            continue
        report.chains.append(
            _verify_stored_chain(
                store,
                producer,
                keyring,
                checkpoints.get(producer, ()),
                head_seq=heads.get(producer),
                anchor=anchors.get(producer),
                workers=workers,
            )
        )
    return report


def _anchor_from_notice(data: dict[str, Any]) -> PruneAnchor | None:
    """The anchor a signed retention event states (trusted only once its MAC verifies)."""
    details = data.get("details") or {}
    try:
        nodes = [bytes.fromhex(h) for h in details["anchor_frontier"]]
        seq = int(details["pruned_through"])
        return PruneAnchor(seq, str(details["anchor_mac"]), CompactRange(seq, nodes))
    except (KeyError, TypeError, ValueError):
        return None


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The events of a JSON Lines export, in file order."""
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise AuditError(f"{path}:{number}: not JSON: {exc}") from exc
                if not isinstance(data, dict):
                    raise AuditError(f"{path}:{number}: not a JSON object")
                yield data
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc}") from exc


def verify_jsonl(
    path: Path,
    keyring: HmacKeyring,
    *,
    checkpoint_paths: Iterable[Path] = (),
    public_keys: PublicKeys | None = None,
) -> VerifyReport:
    """Verify an export made by ``engine audit export`` (one canonical event per line)."""
    report = VerifyReport()
    checkpoints, problems, report.checkpoints = load_checkpoint_set(
        checkpoint_paths, public_keys or PublicKeys()
    )
    report.problems.extend(problems)
    chains: dict[str, list[tuple[bytes, str, Sequence[Any] | None]]] = defaultdict(list)
    anchors: dict[str, PruneAnchor] = {}
    first_seq: dict[str, int] = {}
    for data in iter_jsonl(path):
        mac = str(data.pop("mac", ""))
        producer = str(data.get("producer"))
        first_seq.setdefault(
            producer, data.get("seq", 0) if isinstance(data.get("seq"), int) else 0
        )
        if data.get("action") == RETENTION_ACTION:
            found = _anchor_from_notice(data)
            if found is not None and found.seq + 1 == first_seq[producer]:
                anchors[producer] = found
        chains[producer].append((canonical_json(data), mac, None))
    for producer in sorted(set(chains) | set(checkpoints)):
        report.chains.append(
            verify_chain(
                producer,
                chains.get(producer, []),
                keyring,
                checkpoints.get(producer, ()),
                anchor=anchors.get(producer),
            )
        )
    return report
