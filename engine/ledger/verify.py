"""Verification: walk each chain, check every MAC and link, and compare with checkpoints.

Finds a changed field (MAC mismatch, or an indexed column that disagrees with the signed
body), deleted events (sequence gaps and broken links), reordering, forged insertions
(MACs that no known key produces), a wrong key, truncation of the tail (fewer events
than a checkpoint states, or than the chain head records), histories rewritten under a
stolen HMAC key (Merkle root differs from a checkpoint), and bad checkpoint signatures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from engine.ledger.canonical import canonical_json
from engine.ledger.checkpoint import Checkpoint, checkpoint_files, read_checkpoint
from engine.ledger.errors import AuditError, CheckpointError
from engine.ledger.events import RETENTION_ACTION
from engine.ledger.findings import ChainReport, Problem, ProblemKind, VerifyReport, VerifyStatus
from engine.ledger.keys import HmacKeyring, PublicKeys
from engine.ledger.merkle import CompactRange
from engine.ledger.schema import PruneAnchor
from engine.ledger.store import AuditStore
from engine.ledger.walk import PARALLEL_MIN_EVENTS, ChainWalk, verify_stored_chain

__all__ = [
    "PARALLEL_MIN_EVENTS",
    "ChainReport",
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "VerifyStatus",
    "iter_jsonl",
    "load_checkpoint_set",
    "verify_chain",
    "verify_jsonl",
    "verify_store",
]


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
    walk = ChainWalk(producer, keyring, checkpoints, anchor=anchor)
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
            verify_stored_chain(
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
