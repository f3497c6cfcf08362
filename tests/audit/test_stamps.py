"""Event ids and times: rendered from cached parts, they must equal the plain renderings."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime

import pytest

from engine.ledger.clock import new_event_id, now_text
from engine.ledger.events import format_time

# Instants around second, millisecond and day boundaries, and a spread of ordinary ones.
EDGES = [
    0,
    999,
    1_000,
    999_999,
    1_000_000,
    999_999_999,
    1_000_000_000,
    86_399_999_999_999,
    86_400_000_000_000,
    1_798_761_599_999_999_999,  # 2026-12-31T23:59:59.999999999Z
    1_798_761_600_000_000_000,
]
SPREAD = [1_780_000_000_000_000_000 + k * 7_654_321_987 for k in range(2_000)]


@pytest.mark.parametrize("ns", EDGES)
def test_event_time_matches_format_time(ns: int) -> None:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns // 1000) % 1_000_000
    )
    assert now_text(ns) == format_time(moment)


def test_event_times_in_any_order_match_format_time() -> None:
    # Out of order and repeated: the per-millisecond cache must never serve a stale part.
    for ns in SPREAD + SPREAD[::-1] + EDGES:
        moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
            microsecond=(ns // 1000) % 1_000_000
        )
        assert now_text(ns) == format_time(moment), ns


def test_event_ids_carry_the_millisecond_and_count_up() -> None:
    ids = [new_event_id(ns) for ns in SPREAD[:300]]
    for ns, event_id in zip(SPREAD, ids, strict=False):
        assert len(event_id) == 32
        assert int(event_id, 16) >= 0
        assert event_id[:12] == f"{ns // 1_000_000:012x}"
    # One random part per process, then a counter that goes up by one (mod 2**32) across
    # the 256-id steps whose hex digits are cached.
    assert len({event_id[12:24] for event_id in ids}) == 1
    counters = [int(event_id[24:], 16) for event_id in ids + [new_event_id() for _ in range(600)]]
    assert all((b - a) % 2**32 == 1 for a, b in itertools.pairwise(counters))
    now = [new_event_id() for _ in range(1000)]
    assert len(set(now)) == 1000
    assert now == sorted(now)  # time-ordered (the counter starts below 2**24)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_id_part() -> None:
    parent = new_event_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child[12:24] != parent[12:24]
    assert child[:12] >= parent[:12]
    assert time.time_ns() // 1_000_000 >= int(child[:12], 16)
