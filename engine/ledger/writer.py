"""The writer of one chain: buffers drafts, then numbers, chains, signs and stores them.

``mac = HMAC-SHA256(key, prev_mac || canonical_json(body))``; every body is also a leaf
of the chain's RFC 6962 tree, whose right frontier travels with the chain head so any
process can extend it. Signed checkpoints are written every ``checkpoint_every`` events
and on :meth:`AuditTrail.close`. The writer calls its :class:`~engine.ledger.hooks.EventHook`
s on every event and knows nothing else of what sits above it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from engine.ledger.canonical import canonical_event, json_safe
from engine.ledger.checkpoint import Checkpoint, sign_checkpoint, write_checkpoint
from engine.ledger.clock import new_event_id, now_text
from engine.ledger.errors import AuditError, AuditKeyError
from engine.ledger.events import (
    AuditCategory,
    AuditLevel,
    DigestResult,
    EventDraft,
    Outcome,
    base_risk,
    format_time,
    new_draft,
)
from engine.ledger.hooks import EventHook
from engine.ledger.keys import HmacKeyring, SigningKey, hmac_sha256
from engine.ledger.merkle import leaf_hash
from engine.ledger.schema import ChainHead
from engine.ledger.store import AuditStore

__all__ = ["AuditTrail", "DigestResult", "Redactor", "Row"]

log = logging.getLogger("engine.audit")

#: (details, extra field names to mask) -> details safe to sign
Redactor = Callable[[Any, frozenset[str]], Any]
#: one stored row, in the store's ROW_FIELDS order
Row = tuple[Any, ...]

_RISK = {(lv.value, cat.value): base_risk(lv, cat) for lv in AuditLevel for cat in AuditCategory}
# Member or text -> text (a StrEnum member hashes and compares as its text).
_LEVEL_TEXT = {lv: lv.value for lv in AuditLevel}
_CATEGORY_TEXT = {cat: cat.value for cat in AuditCategory}
_OUTCOME_TEXT = {o: o.value for o in Outcome}


def _settled(draft: EventDraft) -> bool:
    digest = draft["digest"]
    return digest is None or type(digest) is str or bool(digest.ready())  # type: ignore[union-attr]


class AuditTrail:
    """Appends events to one producer's chain; not thread-safe (one per event loop)."""

    def __init__(
        self,
        store: AuditStore,
        keyring: HmacKeyring,
        *,
        producer: str,
        signing: SigningKey | None = None,
        checkpoint_dir: Path | None = None,
        checkpoint_every: int = 10_000,
        flush_every: int = 256,
        mask_fields: Collection[str] = (),
        actor: str | None = None,
        hooks: Sequence[EventHook] = (),
        redactor: Redactor | None = None,
    ) -> None:
        if checkpoint_dir is not None and signing is None:
            raise AuditError("checkpoints need an Ed25519 signing key")
        self.store = store
        self.keyring = keyring
        self.producer = producer
        self.signing = signing
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.flush_every = flush_every
        self.mask_fields = frozenset(mask_fields)
        self.actor = actor
        self.hooks = tuple(hooks)
        self.redactor = redactor
        self.head: ChainHead | None = None
        self.last_checkpoint: Checkpoint | None = None
        self.last_checkpoint_path: Path | None = None
        self._pending: list[EventDraft] = []
        self._head_checked = False
        # the chain's size when this trail began: a checkpoint is due each time the chain
        # passes a multiple of checkpoint_every after it (after the last checkpoint, once
        # this trail has made one)
        self._counted_from = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def head_checked(self) -> bool:
        """Whether :meth:`check_head` ran (it runs once, before the first event)."""
        return self._head_checked

    def check_head(self) -> None:
        """Refuse to extend a chain whose newest event this trail's keys do not verify.

        Two workspaces with different HMAC keys writing one shared store would otherwise
        interleave events that neither can verify. Checked once, before the first event.
        """
        self._head_checked = True
        last = self.store.head_event(self.producer)
        if last is None:
            return
        # The chain as found was checkpointed when the run that wrote it ended (or will be
        # at this one's end): the cadence counts the events this trail appends.
        self._counted_from = last.seq
        try:
            data = orjson.loads(last.body)
            key_id = str(data["key_id"])
            message = bytes.fromhex(data["prev_mac"]) + last.body
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return  # not a signed body: verification reports it
        key = self.keyring.keys.get(key_id)
        if key is not None and hmac_sha256(key)(message).hex() == last.mac:
            return
        where = f"audit chain {self.producer} in {self.store.url}"
        if key is None:
            why = (
                f"{where} ends with event #{last.seq} signed with HMAC key {key_id}, which "
                f"this workspace does not hold (its key is {self.keyring.current_id})"
            )
        else:
            why = (
                f"{where} ends with event #{last.seq}, which does not verify under key "
                f"{key_id}: another writer uses a different key under that id, or the event "
                "was modified (run `engine audit verify`)"
            )
        raise AuditKeyError(
            f"{why}; nothing was appended. Every writer of a shared store needs the same "
            "key: set AUDIT_SECRET_KEY (or the pipeline's [audit] key) to the key the "
            "chain's other writers use, with [audit] previous_keys for keys rotated out, "
            "or give this workspace its own store ([audit] store)"
        )

    def emit(
        self,
        *,
        level: AuditLevel,
        category: AuditCategory,
        action: str,
        resource: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        user_id: str | None = None,
        actor: str | None = None,
        ip_address: str | None = None,
        host: str | None = None,
        pipeline: str | None = None,
        run_id: str | None = None,
        stage: str | None = None,
        record_count: int | None = None,
        digest: str | DigestResult | None = None,
        details: Mapping[str, Any] | None = None,
        risk: float | None = None,
        timestamp: datetime | None = None,
        trusted_details: bool = False,
    ) -> str:
        """Buffer one event; returns its id. Flushes when ``flush_every`` are waiting.

        ``details`` are made JSON-safe and redacted unless ``trusted_details`` (the
        runtime's own counters and digests, already plain). ``digest`` may be a
        :class:`DigestResult` (left to the sink that writes the batch); it is resolved when
        the event is sealed.
        """
        if not self._head_checked:
            self.check_head()
        level_text = _LEVEL_TEXT.get(level) or AuditLevel(level).value
        category_text = _CATEGORY_TEXT.get(category) or AuditCategory(category).value
        clean: dict[str, Any] = {}
        if details:
            if trusted_details:
                clean = dict(details)
            elif self.redactor is not None:
                clean = self.redactor(json_safe(dict(details)), self.mask_fields)
            else:
                clean = json_safe(dict(details))
        ns = time.time_ns()
        event_id = new_event_id(ns)
        draft = new_draft(
            event_id=event_id,
            timestamp=format_time(timestamp) if timestamp else now_text(ns),
            level=level_text,
            category=category_text,
            action=action,
            risk_score=risk if risk is not None else _RISK[level_text, category_text],
            details=clean,
            outcome=_OUTCOME_TEXT.get(outcome) or Outcome(outcome).value,
            resource=resource,
            actor=actor or self.actor,
            user_id=user_id,
            ip_address=ip_address,
            host=host,
            pipeline=pipeline,
            run_id=run_id,
            stage=stage,
            record_count=record_count,
            digest=digest,
        )
        follow: list[tuple[EventHook, Any]] | None = None
        for hook in self.hooks:
            found = hook.inspect(
                draft,
                None if trusted_details else details,
                score=risk is None,
                stamped=timestamp is not None,
            )
            if found:
                if follow is None:
                    follow = []
                follow.append((hook, found))
        self._pending.append(draft)
        if follow:
            for hook, found in follow:
                hook.follow_up(self, draft, found)
        if len(self._pending) >= self.flush_every:
            self.flush()
        return event_id

    def seal(self, head: ChainHead, drafts: list[EventDraft]) -> tuple[list[Row], ChainHead]:
        """Number, chain and sign ``drafts`` after ``head``: the rows to store and the new
        head (called by the store inside its append transaction)."""
        mac_of = hmac_sha256(self.keyring.current)
        key_id = self.keyring.current_id
        producer = self.producer
        ingested = now_text()
        frontier = head.frontier.copy()
        append_leaf = frontier.append
        prev = head.mac
        prev_raw = bytes.fromhex(prev)
        seq = head.seq
        rows: list[Row] = []
        for draft in drafts:
            seq += 1
            pending_digest = draft["digest"]
            if pending_digest is not None and type(pending_digest) is not str:
                draft["digest"] = pending_digest.result()  # type: ignore[union-attr]
            draft["producer"] = producer
            draft["seq"] = seq
            draft["ingested_at"] = ingested
            draft["key_id"] = key_id
            draft["prev_mac"] = prev
            body = canonical_event(draft, ordered=True)
            prev_raw = mac_of(prev_raw + body)
            mac = prev_raw.hex()
            append_leaf(leaf_hash(body))
            # In ROW_FIELDS order (the table's columns).
            rows.append(
                (
                    producer,
                    seq,
                    draft["event_id"],
                    draft["timestamp"],
                    draft["level"],
                    draft["category"],
                    draft["action"],
                    draft["pipeline"],
                    draft["run_id"],
                    draft["user_id"],
                    draft["stage"],
                    draft["risk_score"],
                    mac,
                    body,
                )
            )
            prev = mac
        return rows, ChainHead(producer, seq, prev, frontier)

    def _seal_pending(self, head: ChainHead) -> tuple[list[Row], ChainHead]:
        return self.seal(head, self._pending)

    def flush(self, *, settled: bool = False) -> ChainHead | None:
        """Seal and store every buffered event in one transaction; raises on store failure.

        Once this returns the events are committed: they survive a crash of the process
        (a SQLite store's write-ahead log is synced to disk at each signed checkpoint,
        PostgreSQL's at each commit).
        With ``settled``, events whose digest still waits for the sink that writes their
        batch stay buffered for a later flush (so they are stored after the events stored
        now): they describe no delivery yet, and digesting them now would hash the batch
        a second time.
        """
        pending = self._pending
        if not pending:
            return self.head
        waiting: list[EventDraft] = []
        if settled and not all(_settled(d) for d in pending):
            waiting = [d for d in pending if not _settled(d)]
            self._pending = [d for d in pending if _settled(d)]
            if not self._pending:
                self._pending = pending
                return self.head
        try:
            self.head = self.store.append(self.producer, self._seal_pending)
        except BaseException:
            self._pending = pending
            raise
        self._pending = waiting
        every = self.checkpoint_every
        done = self.last_checkpoint.tree_size if self.last_checkpoint else self._counted_from
        if self.checkpoint_dir is not None and self.head.seq // every > done // every:
            self.checkpoint()
        return self.head

    def checkpoint(self) -> Checkpoint | None:
        """Flush, then sign and write a checkpoint of the chain as it now stands."""
        if self._pending:
            self.head = self.store.append(self.producer, self._seal_pending)
            self._pending.clear()
        if self.signing is None or self.checkpoint_dir is None:
            return None
        head = self.head or self.store.head(self.producer)
        if head is None or head.seq == 0:
            return None
        if self.last_checkpoint is not None and self.last_checkpoint.tree_size == head.seq:
            return self.last_checkpoint
        # A signed size the store could lose in a power cut would read as truncation.
        self.store.sync()
        cp = sign_checkpoint(self.producer, head.seq, head.frontier.root(), self.signing)
        self.last_checkpoint_path = write_checkpoint(self.checkpoint_dir, cp)
        self.last_checkpoint = cp
        log.debug("audit checkpoint %s at %s", cp.tree_size, self.last_checkpoint_path)
        return cp

    def close(self) -> None:
        """Flush and write the final checkpoint (the store stays open: its owner closes it)."""
        self.flush()
        self.checkpoint()
