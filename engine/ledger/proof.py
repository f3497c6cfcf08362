"""Offline proofs: inclusion of one event, and consistency between two checkpoints.

Anyone holding a proof file and the checkpoint public key can check it without the
store or the HMAC key. An inclusion proof shows that an event is the leaf at
``seq - 1`` of the tree whose root a checkpoint signs; a consistency proof shows that
an older signed checkpoint of a chain is a prefix of a newer one, so the chain only
grew in between (RFC 9162 §2.1.4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.ledger.canonical import canonical_json
from engine.ledger.checkpoint import Checkpoint, sign_checkpoint, write_checkpoint
from engine.ledger.errors import AuditError
from engine.ledger.keys import PublicKeys, SigningKey, public_key_from_b64
from engine.ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_hashes,
    verify_consistency,
    verify_inclusion,
)
from engine.ledger.store import AuditStore

__all__ = [
    "CONSISTENCY_FORMAT",
    "PROOF_FORMAT",
    "ProofCheck",
    "build_consistency_proof",
    "build_proof",
    "check_proof",
]

PROOF_FORMAT = "engine-audit-inclusion-proof/v1"
CONSISTENCY_FORMAT = "engine-audit-consistency-proof/v1"


def _refuse_pruned(store: AuditStore, producer: str, kind: str) -> None:
    if producer in store.anchors():
        raise AuditError(
            f"{producer} was pruned by retention; {kind} proofs for pruned chains "
            "are not supported yet (verify the chain with `engine audit verify`)"
        )


def _sign_head(
    store: AuditStore,
    producer: str,
    public_keys: PublicKeys,
    signing: SigningKey | None,
    checkpoint_dir: Path | None,
    missing: str,
) -> Checkpoint:
    """A new checkpoint of the chain's head, written to ``checkpoint_dir``."""
    head = store.head(producer)
    if signing is None or checkpoint_dir is None or head is None:
        raise AuditError(f"{missing}, and no checkpoint signing key is available to write one")
    checkpoint = sign_checkpoint(producer, head.seq, head.frontier.root(), signing)
    write_checkpoint(checkpoint_dir, checkpoint)
    public_keys.add(signing.public)
    return checkpoint


def _require_root(hashes: list[bytes], checkpoint: Checkpoint) -> None:
    if len(hashes) != checkpoint.tree_size or root_from_hashes(hashes).hex() != checkpoint.root:
        raise AuditError(
            f"the store's chain {checkpoint.producer} does not match {checkpoint.label}; "
            "run `engine audit verify`"
        )


def _leaf_hashes(store: AuditStore, producer: str, size: int) -> list[bytes]:
    return [leaf_hash(b) for b in store.leaf_bodies(producer, size)]


def build_proof(
    store: AuditStore,
    event_id: str,
    checkpoints: list[Checkpoint],
    public_keys: PublicKeys,
    *,
    signing: SigningKey | None = None,
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """The proof of ``event_id`` against the newest valid checkpoint that covers it.

    With no such checkpoint and a signing key, a new checkpoint of the chain is written.
    """
    stored = store.get(event_id)
    if stored is None:
        raise AuditError(f"no event {event_id} in {store.url}")
    _refuse_pruned(store, stored.producer, "inclusion")
    covering = [
        c
        for c in checkpoints
        if c.producer == stored.producer
        and c.tree_size >= stored.seq
        and c.signature_valid(public_keys)
    ]
    if covering:
        checkpoint = max(covering, key=lambda c: c.tree_size)
    else:
        checkpoint = _sign_head(
            store,
            stored.producer,
            public_keys,
            signing,
            checkpoint_dir,
            f"no signed checkpoint covers event #{stored.seq} of {stored.producer}",
        )
    hashes = _leaf_hashes(store, stored.producer, checkpoint.tree_size)
    _require_root(hashes, checkpoint)
    event = orjson.loads(stored.body)
    event["mac"] = stored.mac
    return {
        "format": PROOF_FORMAT,
        "event": event,
        "leaf_index": stored.seq - 1,
        "tree_size": checkpoint.tree_size,
        "proof": [h.hex() for h in inclusion_proof(hashes, stored.seq - 1)],
        "checkpoint": checkpoint.model_dump(),
        "public_key": public_keys.public_b64(checkpoint.key_id),
    }


def build_consistency_proof(
    store: AuditStore,
    old: Checkpoint,
    checkpoints: list[Checkpoint],
    public_keys: PublicKeys,
    *,
    new: Checkpoint | None = None,
    signing: SigningKey | None = None,
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """The proof that ``old`` is a prefix of ``new``, both signed checkpoints of one chain.

    Without ``new``, the newest valid checkpoint of the chain in ``checkpoints`` is used;
    when it does not reach the chain's head and a signing key is given, a new checkpoint
    of the head is written instead.
    """
    producer = old.producer
    if new is not None and new.producer != producer:
        raise AuditError(f"{old.label} is of chain {producer} but {new.label} is of {new.producer}")
    _refuse_pruned(store, producer, "consistency")
    for given in (old, new):
        if given is not None and not given.signature_valid(public_keys):
            raise AuditError(
                f"{given.label}: the signature does not verify with the checkpoint keys"
            )
    if new is None:
        new = _newest_or_head(store, producer, checkpoints, public_keys, signing, checkpoint_dir)
    if new.tree_size < old.tree_size:
        raise AuditError(
            f"{new.label} (tree size {new.tree_size}) is older than {old.label} "
            f"(tree size {old.tree_size}); give the older checkpoint first"
        )
    hashes = _leaf_hashes(store, producer, new.tree_size)
    # The old tree first: a store that no longer matches it had its history rewritten.
    _require_root(hashes[: old.tree_size], old)
    _require_root(hashes, new)
    return {
        "format": CONSISTENCY_FORMAT,
        "old": {
            "checkpoint": old.model_dump(),
            "public_key": public_keys.public_b64(old.key_id),
        },
        "new": {
            "checkpoint": new.model_dump(),
            "public_key": public_keys.public_b64(new.key_id),
        },
        "proof": [h.hex() for h in consistency_proof(hashes, old.tree_size)],
    }


def _newest_or_head(
    store: AuditStore,
    producer: str,
    checkpoints: list[Checkpoint],
    public_keys: PublicKeys,
    signing: SigningKey | None,
    checkpoint_dir: Path | None,
) -> Checkpoint:
    """The newest valid checkpoint of the chain, or a new one when that misses the head."""
    valid = [c for c in checkpoints if c.producer == producer and c.signature_valid(public_keys)]
    newest = max(valid, key=lambda c: c.tree_size, default=None)
    head = store.head(producer)
    if head is None and newest is None:
        raise AuditError(f"no chain {producer} in {store.url}")
    reaches_head = newest is not None and (head is None or newest.tree_size >= head.seq)
    if newest is not None and (reaches_head or signing is None):
        return newest
    return _sign_head(
        store,
        producer,
        public_keys,
        signing,
        checkpoint_dir,
        f"no signed checkpoint of {producer} in the checkpoint folder",
    )


@dataclass(frozen=True)
class ProofCheck:
    ok: bool
    message: str
    key_pinned: bool


def check_proof(data: Mapping[str, Any], pinned: PublicKeys | None = None) -> ProofCheck:
    """Check an inclusion or consistency proof offline, by its ``format``.

    Without ``pinned`` keys, the public key embedded with each checkpoint is used.
    """
    checker = _CHECKERS.get(str(data.get("format")))
    if checker is None:
        return ProofCheck(
            False,
            f"not an engine audit proof: format {data.get('format')!r}, expected "
            f"{' or '.join(_CHECKERS)}",
            pinned is not None,
        )
    try:
        return checker(data, pinned)
    except (AttributeError, KeyError, TypeError, ValueError, AuditError) as exc:
        return ProofCheck(False, f"malformed proof: {exc}", pinned is not None)


def _keys(pinned: PublicKeys | None, embedded: object) -> PublicKeys:
    return pinned if pinned is not None else PublicKeys([public_key_from_b64(str(embedded))])


def _check_inclusion(data: Mapping[str, Any], pinned: PublicKeys | None) -> ProofCheck:
    event = dict(data["event"])
    event.pop("mac", None)
    checkpoint = Checkpoint.model_validate(data["checkpoint"])
    index = int(data["leaf_index"])
    size = int(data["tree_size"])
    path = [bytes.fromhex(h) for h in data["proof"]]
    keys = _keys(pinned, data.get("public_key"))
    pinned_flag = pinned is not None
    if not checkpoint.signature_valid(keys):
        return ProofCheck(False, "the checkpoint signature does not verify", pinned_flag)
    if checkpoint.tree_size != size or event.get("producer") != checkpoint.producer:
        return ProofCheck(
            False, "the proof and the checkpoint describe different trees", pinned_flag
        )
    if event.get("seq") != index + 1:
        return ProofCheck(
            False, "the event's sequence number is not its leaf index + 1", pinned_flag
        )
    leaf = leaf_hash(canonical_json(event))
    if not verify_inclusion(index, size, leaf, path, checkpoint.root_bytes):
        return ProofCheck(
            False,
            "the event is not in the checkpointed tree (modified or wrong proof)",
            pinned_flag,
        )
    return ProofCheck(
        True,
        f"event {event.get('event_id')} is leaf {index} of {checkpoint.producer}'s tree of "
        f"{size}, signed by {checkpoint.key_id} at {checkpoint.timestamp}",
        pinned_flag,
    )


def _check_consistency(data: Mapping[str, Any], pinned: PublicKeys | None) -> ProofCheck:
    old = Checkpoint.model_validate(data["old"]["checkpoint"])
    new = Checkpoint.model_validate(data["new"]["checkpoint"])
    old_keys = _keys(pinned, data["old"].get("public_key"))
    new_keys = _keys(pinned, data["new"].get("public_key"))
    path = [bytes.fromhex(h) for h in data["proof"]]
    old_root, new_root = old.root_bytes, new.root_bytes
    pinned_flag = pinned is not None
    for name, checkpoint, keys in (("old", old, old_keys), ("new", new, new_keys)):
        if not checkpoint.signature_valid(keys):
            return ProofCheck(
                False,
                f"the {name} checkpoint's signature does not verify "
                f"({checkpoint.producer}@{checkpoint.tree_size}, key {checkpoint.key_id})",
                pinned_flag,
            )
    if old.producer != new.producer:
        return ProofCheck(
            False,
            f"the checkpoints are of different chains: {old.producer} and {new.producer}",
            pinned_flag,
        )
    if old.tree_size > new.tree_size:
        return ProofCheck(
            False,
            f"the old checkpoint's tree ({old.tree_size}) is larger than the new one's "
            f"({new.tree_size}): sizes inverted or checkpoints swapped",
            pinned_flag,
        )
    if not verify_consistency(old.tree_size, new.tree_size, path, old_root, new_root):
        return ProofCheck(
            False,
            f"{old.producer}@{old.tree_size} is not a prefix of {new.producer}@"
            f"{new.tree_size} (history rewritten, or a modified proof)",
            pinned_flag,
        )
    return ProofCheck(
        True,
        f"{old.producer}'s tree of {old.tree_size} (signed by {old.key_id} at "
        f"{old.timestamp}) is a prefix of its tree of {new.tree_size} (signed by "
        f"{new.key_id} at {new.timestamp}): the chain only grew",
        pinned_flag,
    )


_CHECKERS: dict[str, Callable[[Mapping[str, Any], PublicKeys | None], ProofCheck]] = {
    PROOF_FORMAT: _check_inclusion,
    CONSISTENCY_FORMAT: _check_consistency,
}
