"""Walking one chain: every event's MAC, columns, number and link, and its Merkle tree.

A :class:`ChainWalk` is fed events in stored order. A long stored chain is split by
sequence number into segments walked by forked worker processes, one per core
(:func:`verify_stored_chain`); the first walk joins them in order.
"""

from __future__ import annotations

import multiprocessing
import operator
import os
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

import orjson

from engine.ledger.checkpoint import Checkpoint
from engine.ledger.errors import AuditError
from engine.ledger.events import GENESIS_MAC, RETENTION_ACTION
from engine.ledger.findings import (
    ChainReport,
    Problem,
    ProblemKind,
    compress_numbers,
    describe_event,
)
from engine.ledger.keys import HmacKeyring, hmac_sha256
from engine.ledger.merkle import CompactRange, leaf_hash
from engine.ledger.schema import INDEXED_FIELDS, PruneAnchor
from engine.ledger.store import AuditStore

__all__ = ["PARALLEL_MIN_EVENTS", "ChainWalk", "verify_stored_chain"]

_CHECKED = ("producer", "seq", *INDEXED_FIELDS)


_body_columns = operator.itemgetter(*_CHECKED)


def _columns_differ(stored: Sequence[Any], data: dict[str, Any]) -> bool:
    try:
        return bool(tuple(stored[:12]) != _body_columns(data))
    except KeyError:
        return True


class ChainWalk:
    """The state of one chain's verification, fed events in stored order.

    The expensive part (parsing, MACs, leaf hashes) of a long chain is split across
    processes (:func:`verify_store`): each segment is walked by its own ``ChainWalk``,
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
                name = describe_event(seq, event_id)
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
                            key_id=str(key_id),
                        )
                    )

            if stored is not None and _columns_differ(stored, data):
                changed = [f for i, f in enumerate(_CHECKED) if stored[i] != data.get(f)]
                report.add(
                    Problem(
                        ProblemKind.COLUMN_MISMATCH,
                        producer,
                        f"{describe_event(seq, event_id)}: stored column(s) {', '.join(changed)} "
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

            leaf = leaf_hash(body)
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
                            f"{describe_event(seq, event_id)})",
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
        report.suppressed_other += part.suppressed_other
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
            suppressed_other=report.suppressed_other,
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
                    f"missing sequence numbers: {compress_numbers(report.missing)}",
                )
            )
        reordered = sorted(n for n in set(self.seen_gaps) if n in seen)
        if reordered:
            report.add(
                Problem(
                    ProblemKind.REORDERED,
                    producer,
                    f"events stored out of order: {compress_numbers(reordered)}",
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
    suppressed_other: int
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
        f"{describe_event(seq, event_id)} appears after event #{expected - 1}: out of order or "
        "duplicated",
        seq,
        event_id,
    )


def _broken_link(producer: str, seq: int, event_id: str | None) -> Problem:
    return Problem(
        ProblemKind.BROKEN_LINK,
        producer,
        f"{describe_event(seq, event_id)}: prev_mac does not match the MAC of the event stored "
        "before it (an event was deleted, inserted or moved before it)",
        seq,
        event_id,
    )


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
        walk = ChainWalk(producer, keyring, anchor=anchor, segment=True)
        walk.feed(_store_events(store, producer, after=after, upto=upto))
        conn.send(walk.as_segment())
    except BaseException as exc:
        conn.send(AuditError(f"verifying {producer} events {after + 1}-{upto or ''}: {exc}"))
    finally:
        conn.close()


def verify_stored_chain(
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
    walk = ChainWalk(producer, keyring, checkpoints, anchor=anchor)
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
