"""A seen-delivery cache: a delivery id accepted once is not accepted again within its TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["ReplayCache"]


class ReplayCache:
    """Bounded and time-limited: the oldest ids go first when ``max_size`` is reached."""

    def __init__(
        self, ttl: float, max_size: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, delivery_id: str) -> bool:
        self._expire()
        return delivery_id in self._seen

    def add(self, delivery_id: str) -> None:
        self._expire()
        self._seen[delivery_id] = self._clock() + self.ttl
        self._seen.move_to_end(delivery_id)
        while len(self._seen) > self.max_size:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[oldest]
