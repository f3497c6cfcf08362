"""Signed checkpoints of a chain's Merkle tree, kept apart from the store.

A checkpoint states (producer, tree size, root, time, key id) and is signed with the
Ed25519 checkpoint key. Verification compares the store's tree against every checkpoint:
a smaller tree than a checkpoint means the tail was truncated.
Layout: ``<dir>/<producer>/<tree size, 12 digits>.json``, one file per checkpoint.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.ledger.canonical import canonical_json
from engine.ledger.errors import CheckpointError
from engine.ledger.keys import PublicKeys, SigningKey

__all__ = [
    "Checkpoint",
    "checkpoint_path",
    "load_checkpoints",
    "sign_checkpoint",
    "write_checkpoint",
]

_DOMAIN = b"engine-audit checkpoint v1\n"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class Checkpoint(BaseModel):
    """A signed statement of a chain's tree size and root."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    producer: str
    tree_size: int = Field(ge=0)
    root: str = Field(description="Merkle tree hash, hex.")
    timestamp: str = Field(description="When it was signed, UTC ISO 8601.")
    key_id: str = Field(description="Id of the Ed25519 key that signed it.")
    signature: str = Field(description="Ed25519 signature, base64.")
    source: str | None = Field(None, exclude=True, description="File it was read from.")

    def signed_message(self) -> bytes:
        body = {
            "producer": self.producer,
            "tree_size": self.tree_size,
            "root": self.root,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
        }
        return _DOMAIN + canonical_json(body)

    def signature_valid(self, keys: PublicKeys) -> bool:
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except ValueError:
            return False
        return keys.verify(self.key_id, signature, self.signed_message())

    @property
    def root_bytes(self) -> bytes:
        return bytes.fromhex(self.root)

    @property
    def label(self) -> str:
        return self.source or f"checkpoint {self.producer}@{self.tree_size}"


def sign_checkpoint(
    producer: str, tree_size: int, root: bytes, key: SigningKey, now: datetime | None = None
) -> Checkpoint:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    unsigned = Checkpoint(
        producer=producer,
        tree_size=tree_size,
        root=root.hex(),
        timestamp=moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        key_id=key.key_id,
        signature="",
    )
    signature = base64.b64encode(key.sign(unsigned.signed_message())).decode()
    return unsigned.model_copy(update={"signature": signature})


def checkpoint_path(directory: Path, producer: str, tree_size: int) -> Path:
    return directory / _UNSAFE.sub("_", producer) / f"{tree_size:012d}.json"


def write_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Write atomically (temporary file, then rename); returns the path."""
    path = checkpoint_path(directory, checkpoint.producer, checkpoint.tree_size)
    data = orjson.dumps(checkpoint.model_dump(), option=orjson.OPT_INDENT_2) + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc}") from exc
    return path


def read_checkpoint(path: Path) -> Checkpoint:
    """Read one checkpoint file (its signature is not checked here)."""
    try:
        data = orjson.loads(path.read_bytes())
        return Checkpoint.model_validate({**data, "source": str(path)})
    except (OSError, orjson.JSONDecodeError, ValidationError, TypeError) as exc:
        raise CheckpointError(f"unreadable checkpoint {path}: {exc}") from exc


def checkpoint_files(paths: Iterable[Path]) -> list[Path]:
    """The checkpoint files in the given files or folders (folders searched recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.json")))
        elif path.exists():
            found.append(path)
    return found


def load_checkpoints(paths: Iterable[Path]) -> list[Checkpoint]:
    """Every checkpoint in the given files or folders, by producer, smallest tree first."""
    found = [read_checkpoint(p) for p in checkpoint_files(paths)]
    return sorted(found, key=lambda c: (c.producer, c.tree_size))
