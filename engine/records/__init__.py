"""Records and the batches that cross stage boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import Rejected
from engine.records.digest import ContentDigest

__all__ = ["Batch", "Chunk", "Record", "Rejected"]

Record = dict[str, Any]
Batch = list[Record]


@dataclass(slots=True)
class Chunk:
    """What a decoder or source yields: accepted records plus the inputs it had to reject."""

    records: Batch
    rejected: list[Rejected] = field(default_factory=list)
    #: set by sources that acknowledge input (queues): handed back to ``Source.ack`` once
    #: every record of this chunk was delivered (or dead-lettered) by every sink downstream
    token: object | None = None
    #: set by sources that read a byte stream while auditing: the SHA-256 of the input
    #: bytes read for this chunk, with their offsets
    content: ContentDigest | None = None
