"""What a replay claim is, and what a store of claims does (SQLite or Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

__all__ = ["Claim", "ReplayStore", "Seen"]


@dataclass(frozen=True, slots=True)
class Claim:
    """The keys one request holds, the token that proves it, and how long once delivered."""

    keys: tuple[str, ...]
    token: str
    ttl: float


class Seen(Enum):
    """Why a claim was refused: the delivery was made, or is being made right now."""

    DELIVERED = "delivered"
    IN_FLIGHT = "in_flight"


class ReplayStore(Protocol):
    """Where claims live.

    ``claim`` takes every key for ``lease`` seconds, or none and says why; ``confirm`` keeps
    them for the claim's ``ttl``; ``release`` gives them up.
    """

    async def claim(self, keys: Sequence[str], ttl: float, lease: float) -> Claim | Seen: ...

    async def confirm(self, claim: Claim) -> None: ...

    async def release(self, claim: Claim) -> None: ...

    async def aclose(self) -> None: ...
