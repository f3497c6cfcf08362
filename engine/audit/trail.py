"""The writer of one chain: buffers drafts, then numbers, chains, signs and stores them.

``mac = HMAC-SHA256(key, prev_mac || canonical_json(body))``; every body is also a leaf
of the chain's RFC 6962 tree, whose right frontier travels with the chain head so any
process can extend it. Signed checkpoints are written every ``checkpoint_every`` events
and on :meth:`AuditTrail.close`.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from engine.audit.canonical import canonical_event
from engine.audit.checkpoint import Checkpoint, sign_checkpoint, write_checkpoint
from engine.audit.errors import AuditError, AuditKeyError
from engine.audit.events import AuditCategory, AuditLevel, Outcome, format_time
from engine.audit.keys import (
    HmacKeyring,
    SigningKey,
    hmac_sha256,
    load_keyring,
    load_signing_key,
)
from engine.audit.merkle import leaf_hash
from engine.audit.redact import redact
from engine.audit.risk import risk_score
from engine.audit.schema import ChainHead, PruneAnchor
from engine.audit.settings import AuditSettings
from engine.audit.store import AuditStore, default_store_url
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.audit.rules.policy import CompliancePolicy

__all__ = [
    "RETENTION_ACTION",
    "AuditResources",
    "AuditTrail",
    "DigestResult",
    "json_safe",
    "new_event_id",
    "now_text",
    "open_resources",
]

log = logging.getLogger("engine.audit")

RETENTION_ACTION = "retention_applied"
_RISK = {(lv.value, cat.value): risk_score(lv, cat) for lv in AuditLevel for cat in AuditCategory}
# Member or text -> text (a StrEnum member hashes and compares as its text).
_LEVEL_TEXT = {lv: lv.value for lv in AuditLevel}
_CATEGORY_TEXT = {cat: cat.value for cat in AuditCategory}
_OUTCOME_TEXT = {o: o.value for o in Outcome}


class DigestResult(Protocol):
    """A digest computed later (one a sink will hand over, say): resolved at sealing."""

    def result(self) -> str: ...

    def ready(self) -> bool:
        """Whether :meth:`result` is known without computing it."""
        ...


def _settled(draft: dict[str, Any]) -> bool:
    digest = draft["digest"]
    return digest is None or type(digest) is str or bool(digest.ready())


# Event ids and times are rendered from parts cached per millisecond and per 256 ids, and
# lookup tables for the rest: formatting integers costs more than the rest of an event's
# bookkeeping, and a busy trail stamps dozens of events each millisecond.
_HEX2 = [f"{i:02x}" for i in range(256)]
_DEC3 = [f"{i:03d}" for i in range(1000)]
# [millisecond, its id prefix, its time prefix, second, its time prefix]
_stamp: list[Any] = [-1, "", "", -1, ""]
# [random id part, counter, counter >> 8, its 6 hex digits]
_ids: list[Any] = []


def _reset_ids() -> None:
    _ids[:] = [os.urandom(6).hex(), itertools.count(int.from_bytes(os.urandom(3))), -1, ""]
    _stamp[0] = -1  # the id prefix holds the random part


_reset_ids()
os.register_at_fork(after_in_child=_reset_ids)


def _millisecond(ms: int) -> None:
    stamp = _stamp
    second = ms // 1000
    if stamp[3] != second:
        stamp[3] = second
        stamp[4] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    stamp[0] = ms
    stamp[1] = f"{ms:012x}{_ids[0]}"
    stamp[2] = stamp[4] + _DEC3[ms % 1000]


def now_text(ns: int | None = None) -> str:
    """The current UTC time (or ``ns``, nanoseconds since the epoch) as :func:`format_time`
    renders it, cheaply."""
    if ns is None:
        ns = time.time_ns()
    us = ns // 1000
    ms = us // 1000
    if _stamp[0] != ms:
        _millisecond(ms)
    text: str = _stamp[2] + _DEC3[us % 1000] + "Z"
    return text


def new_event_id(ns: int | None = None) -> str:
    """32 hex digits: milliseconds since the epoch (now, or ``ns`` nanoseconds), 48 random
    bits drawn once per process, then a 32-bit counter (ordered, like UUIDv7, and unique
    without a system call each).

    Time-ordered ids keep the unique index append-mostly, which makes inserts cheaper.
    """
    if ns is None:
        ns = time.time_ns()
    ms = ns // 1_000_000
    if _stamp[0] != ms:
        _millisecond(ms)
    ids = _ids
    n = next(ids[1]) & 0xFFFFFFFF
    high = n >> 8
    if ids[2] != high:
        ids[2] = high
        ids[3] = f"{high:06x}"
    event_id: str = _stamp[1] + ids[3] + _HEX2[n & 0xFF]
    return event_id


def json_safe(value: Any) -> Any:
    """A plain JSON value (dicts, lists, str, int, float, bool, None) from anything."""
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


@dataclass
class AuditResources:
    """What a trail needs, opened from settings and a workspace: close it when done."""

    store: AuditStore
    keyring: HmacKeyring
    signing: SigningKey | None
    checkpoint_dir: Path
    settings: AuditSettings
    workspace: Path
    # The compliance policy its trails apply (rules, masking, risk); None: base risk only.
    policy: CompliancePolicy | None = None
    # The environment's settings (AUDIT_*, COMPLIANCE_*_ENABLED)
    env: EngineSettings = field(default_factory=EngineSettings.defaults)

    def trail(self, producer: str, **kwargs: Any) -> AuditTrail:
        kwargs.setdefault("policy", self.policy)
        return AuditTrail(
            self.store,
            self.keyring,
            producer=producer,
            signing=self.signing,
            checkpoint_dir=self.checkpoint_dir,
            checkpoint_every=self.settings.checkpoint_every,
            flush_every=self.settings.flush_every,
            mask_fields=self.settings.mask_fields,
            **kwargs,
        )

    def close(self) -> None:
        try:
            if self.policy is not None:
                self.policy.close()
        finally:
            self.store.close()


def open_resources(
    settings: AuditSettings,
    workspace: Path,
    *,
    store_url: str | None = None,
    create: bool = True,
    env: EngineSettings | None = None,
) -> AuditResources:
    """Open the store and load (or, with ``create``, generate) the keys. ``env``: the
    environment's settings (AUDIT_SECRET_KEY, ...; default none)."""
    env = env if env is not None else EngineSettings.defaults()
    key = settings.key or env.audit_secret_key
    signing_key = settings.signing_key or env.audit_signing_key
    keyring = load_keyring(
        workspace,
        key=key.get_secret_value() if key else None,
        key_id=settings.key_id,
        previous=[k.get_secret_value() for k in settings.previous_keys],
        create=create,
    )
    signing = load_signing_key(
        workspace,
        key=signing_key.get_secret_value() if signing_key else None,
        create=create,
        source="[audit] signing_key" if settings.signing_key else "AUDIT_SIGNING_KEY",
    )
    url = store_url or settings.store or default_store_url(workspace)
    checkpoint_dir = Path(settings.checkpoint) if settings.checkpoint else workspace / "checkpoints"
    store = AuditStore(url, create=create)
    resources = AuditResources(
        store, keyring, signing, checkpoint_dir, settings, workspace, env=env
    )
    try:
        from engine.audit.rules.setup import policy_for

        resources.policy = policy_for(resources)
    except BaseException:
        store.close()
        raise
    return resources


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
        policy: CompliancePolicy | None = None,
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
        self.policy = policy
        self.head: ChainHead | None = None
        self.last_checkpoint: Checkpoint | None = None
        self.last_checkpoint_path: Path | None = None
        self._pending: list[dict[str, Any]] = []
        self._head_checked = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def check_head(self) -> None:
        """Refuse to extend a chain whose newest event this trail's keys do not verify.

        Two workspaces with different HMAC keys writing one shared store would otherwise
        interleave events that neither can verify. Checked once, before the first event.
        """
        self._head_checked = True
        last = self.store.head_event(self.producer)
        if last is None:
            return
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
            clean = (
                dict(details)
                if trusted_details
                else redact(json_safe(dict(details)), self.mask_fields)
            )
        ns = time.time_ns()
        event_id = new_event_id(ns)
        # Keys in sorted order (the canonical order): the body is encoded without sorting.
        # The trail's own fields are filled in when the event is sealed.
        draft = {
            "action": action,
            "actor": actor or self.actor,
            "category": category_text,
            "details": clean,
            "digest": digest,
            "event_id": event_id,
            "host": host,
            "ingested_at": None,
            "ip_address": ip_address,
            "key_id": None,
            "level": level_text,
            "outcome": _OUTCOME_TEXT.get(outcome) or Outcome(outcome).value,
            "pipeline": pipeline,
            "prev_mac": None,
            "producer": None,
            "record_count": record_count,
            "resource": resource,
            "risk_score": risk if risk is not None else _RISK[level_text, category_text],
            "run_id": run_id,
            "seq": None,
            "stage": stage,
            "timestamp": format_time(timestamp) if timestamp else now_text(ns),
            "user_id": user_id,
        }
        policy = self.policy
        hits = (
            policy.inspect(
                draft,
                None if trusted_details else details,
                score=risk is None,
                stamped=timestamp is not None,
            )
            if policy is not None
            else None
        )
        self._pending.append(draft)
        if hits:
            assert policy is not None
            policy.follow_up(self, draft, hits)
        if len(self._pending) >= self.flush_every:
            self.flush()
        return event_id

    def _seal(self, head: ChainHead) -> tuple[list[tuple[Any, ...]], ChainHead]:
        mac_of = hmac_sha256(self.keyring.current)
        key_id = self.keyring.current_id
        producer = self.producer
        ingested = now_text()
        frontier = head.frontier.copy()
        append_leaf = frontier.append
        prev = head.mac
        prev_raw = bytes.fromhex(prev)
        seq = head.seq
        rows: list[tuple[Any, ...]] = []
        for draft in self._pending:
            seq += 1
            pending_digest = draft["digest"]
            if pending_digest is not None and type(pending_digest) is not str:
                draft["digest"] = pending_digest.result()
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
        waiting: list[dict[str, Any]] = []
        if settled and not all(_settled(d) for d in pending):
            waiting = [d for d in pending if not _settled(d)]
            self._pending = [d for d in pending if _settled(d)]
            if not self._pending:
                self._pending = pending
                return self.head
        try:
            self.head = self.store.append(self.producer, self._seal)
        except BaseException:
            self._pending = pending
            raise
        self._pending = waiting
        every = self.checkpoint_every
        done = self.last_checkpoint.tree_size if self.last_checkpoint else 0
        if self.checkpoint_dir is not None and self.head.seq // every > done // every:
            self.checkpoint()
        return self.head

    def checkpoint(self) -> Checkpoint | None:
        """Flush, then sign and write a checkpoint of the chain as it now stands."""
        if self._pending:
            self.head = self.store.append(self.producer, self._seal)
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

    def prune(
        self, *, before: datetime | None = None, keep_last: int | None = None
    ) -> PruneAnchor | None:
        """Delete this chain's events older than ``before`` or beyond the newest
        ``keep_last``, leaving a signed ``retention_applied`` event that anchors what was
        removed (so verification resumes there and can tell pruning from deletion)."""
        if not self._head_checked:
            self.check_head()
        self.flush()
        notice_id = new_event_id()

        def seal(head: ChainHead, anchor: PruneAnchor) -> tuple[list[tuple[Any, ...]], ChainHead]:
            self._pending = [
                {
                    "action": RETENTION_ACTION,
                    "actor": self.actor,
                    "category": AuditCategory.COMPLIANCE.value,
                    "details": {
                        "anchor_frontier": [n.hex() for n in anchor.frontier.nodes],
                        "anchor_mac": anchor.mac,
                        "anchor_root": anchor.frontier.root().hex(),
                        "before": format_time(before) if before else None,
                        "keep_last": keep_last,
                        "pruned_through": anchor.seq,
                    },
                    "digest": None,
                    "event_id": notice_id,
                    "host": None,
                    "ingested_at": None,
                    "ip_address": None,
                    "key_id": None,
                    "level": AuditLevel.INFO.value,
                    "outcome": Outcome.SUCCESS.value,
                    "pipeline": None,
                    "prev_mac": None,
                    "producer": None,
                    "record_count": anchor.seq,
                    "resource": self.producer,
                    "risk_score": risk_score(AuditLevel.INFO, AuditCategory.COMPLIANCE),
                    "run_id": None,
                    "seq": None,
                    "stage": None,
                    "timestamp": now_text(),
                    "user_id": None,
                }
            ]
            return self._seal(head)

        try:
            anchor = self.store.prune(
                self.producer,
                before=format_time(before) if before else None,
                keep_last=keep_last,
                seal=seal,
            )
        finally:
            self._pending = []
        if anchor is not None:
            self.head = self.store.head(self.producer)
            log.info("pruned %s through event #%s", self.producer, anchor.seq)
        return anchor

    def close(self) -> None:
        """Flush and write the final checkpoint (the store stays open: its owner closes it)."""
        self.flush()
        self.checkpoint()
