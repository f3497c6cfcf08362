"""RFC 6962 Merkle tree hashing, inclusion and consistency proofs, and their verifiers.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)`` (RFC 6962 §2.1; proofs as in RFC 9162 §2.1.3-2.1.4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_hashes",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
# SHA-256 after the leaf and the node prefix. Copying one of these costs a fifth less than
# constructing a hash object, which OpenSSL 3 looks up by name every time.
_LEAF_PREFIX = hashlib.sha256(b"\x00")
_NODE_PREFIX = hashlib.sha256(b"\x01")


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf: SHA-256(0x00 || data)."""
    h = _LEAF_PREFIX.copy()
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    h = _NODE_PREFIX.copy()
    h.update(left + right)
    return h.digest()


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a list of leaf hashes.

    Level by level, an unpaired last node is carried up unchanged, which gives the same
    tree as RFC 6962's split at the largest power of two below n.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root(leaves: list[bytes]) -> bytes:
    """Merkle tree hash (MTH) of a list of leaf data."""
    return root_from_hashes([leaf_hash(leaf) for leaf in leaves])


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of the given leaf hashes."""
    if not 0 <= index < len(hashes):
        raise ValueError(f"leaf index {index} outside a tree of size {len(hashes)}")
    proof: list[bytes] = []
    level = list(hashes)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        index >>= 1
    return proof


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _subproof(size1: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if size1 == n:
        return [] if complete else [root_from_hashes(hashes)]
    k = _largest_power_of_two_below(n)
    if size1 <= k:
        return [*_subproof(size1, hashes[:k], complete), root_from_hashes(hashes[k:])]
    return [*_subproof(size1 - k, hashes[k:], False), root_from_hashes(hashes[:k])]


def consistency_proof(hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Proof that the tree of the first ``size1`` leaf hashes is a prefix of the whole."""
    if not 0 <= size1 <= len(hashes):
        raise ValueError(f"size {size1} outside a tree of size {len(hashes)}")
    if size1 in (0, len(hashes)):
        return []
    return _subproof(size1, hashes, True)


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """The root implied by an inclusion proof, or None when the proof is malformed."""
    if index >= size or index < 0:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0 or len(p) != 32:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows the leaf hash at ``index`` in the tree of ``size`` and ``root``."""
    if len(leaf) != 32:
        return False
    return root_from_inclusion_proof(index, size, leaf, proof) == root


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """True when ``proof`` shows the tree (size1, root1) is a prefix of (size2, root2).

    RFC 9162 §2.1.4 defines proofs for 0 < size1 < size2 only. At the edges the proof must
    be empty: equal sizes need equal roots, and the empty tree's root is ``EMPTY_ROOT``
    (MTH({}) = SHA-256()), so size 0 with any other root1 is no prefix of anything.
    """
    if size2 < size1 or size1 < 0:
        return False
    if size1 == 0 and root1 != EMPTY_ROOT:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof or any(len(p) != 32 for p in proof):
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: root1 is itself the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


class CompactRange:
    """The right frontier of a growing tree: one root per perfect subtree, largest first.

    Appending is O(log n) amortised and the root is computed without the leaves, so a
    writer can keep the tree across processes by storing :attr:`nodes` with the chain head.
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count():
            raise ValueError(
                f"a range of size {size} has {size.bit_count()} nodes, not {len(nodes)}"
            )
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        size = self.size
        node = leaf
        nodes = self.nodes
        while size & 1:
            node = node_hash(nodes.pop(), node)
            size >>= 1
        nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        """The Merkle tree hash of everything appended so far."""
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            root = node_hash(node, root)
        return root

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.nodes)
