"""Offline inclusion proofs: one event, its audit path, and the signed checkpoint.

Anyone holding the proof file and the checkpoint public key can check, without the
store or the HMAC key, that the event is the leaf at ``seq - 1`` of the tree whose
root the checkpoint signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.audit.canonical import canonical_json
from engine.audit.checkpoint import Checkpoint, sign_checkpoint, write_checkpoint
from engine.audit.errors import AuditError
from engine.audit.keys import PublicKeys, SigningKey, public_key_from_b64
from engine.audit.merkle import inclusion_proof, leaf_hash, root_from_hashes, verify_inclusion
from engine.audit.store import AuditStore

__all__ = ["PROOF_FORMAT", "ProofCheck", "build_proof", "check_proof"]

PROOF_FORMAT = "engine-audit-inclusion-proof/v1"


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
    if stored.producer in store.anchors():
        raise AuditError(
            f"{stored.producer} was pruned by retention; inclusion proofs for pruned chains "
            "are not supported yet (verify the chain with `engine audit verify`)"
        )
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
        head = store.head(stored.producer)
        if signing is None or checkpoint_dir is None or head is None:
            raise AuditError(
                f"no signed checkpoint covers event #{stored.seq} of {stored.producer}, "
                "and no checkpoint signing key is available to write one"
            )
        checkpoint = sign_checkpoint(stored.producer, head.seq, head.frontier.root(), signing)
        write_checkpoint(checkpoint_dir, checkpoint)
        public_keys.add(signing.public)
    bodies = store.leaf_bodies(stored.producer, checkpoint.tree_size)
    hashes = [leaf_hash(b) for b in bodies]
    if len(hashes) != checkpoint.tree_size or root_from_hashes(hashes).hex() != checkpoint.root:
        raise AuditError(
            f"the store's chain {stored.producer} does not match {checkpoint.label}; "
            "run `engine audit verify`"
        )
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


@dataclass(frozen=True)
class ProofCheck:
    ok: bool
    message: str
    key_pinned: bool


def check_proof(data: dict[str, Any], pinned: PublicKeys | None = None) -> ProofCheck:
    """Check a proof offline. Without ``pinned`` keys, the embedded public key is used."""
    try:
        if data.get("format") != PROOF_FORMAT:
            return ProofCheck(False, f"not an {PROOF_FORMAT} document", False)
        event = dict(data["event"])
        event.pop("mac", None)
        checkpoint = Checkpoint.model_validate(data["checkpoint"])
        index = int(data["leaf_index"])
        size = int(data["tree_size"])
        path = [bytes.fromhex(h) for h in data["proof"]]
        keys = pinned
        if keys is None:
            keys = PublicKeys([public_key_from_b64(str(data["public_key"]))])
    except (KeyError, TypeError, ValueError, AuditError) as exc:
        return ProofCheck(False, f"malformed proof: {exc}", pinned is not None)
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
