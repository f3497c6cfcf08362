"""ReadAhead: items made in a thread of their own, in order, never more than one ahead of
the taker; an error surfaces where its item would have; closing stops the thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import pytest

from engine.records.ahead import ReadAhead


class Made:
    """An iterator that counts what it made and in which thread."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.made: list[int] = []
        self.threads: set[str] = set()
        self._count = count
        self._fail_at = fail_at

    def __iter__(self) -> Iterator[int]:
        for i in range(self._count):
            if i == self._fail_at:
                raise ValueError(f"item {i} is bad")
            self.made.append(i)
            self.threads.add(threading.current_thread().name)
            yield i


def test_items_come_in_order_with_what_was_noted_when_each_was_made() -> None:
    source = Made(50)

    async def take() -> list[tuple[int, int]]:
        ahead = ReadAhead(iter(source), lambda item: len(source.made), name="t-ahead")
        got = []
        try:
            while (out := await ahead.next()) is not None:
                got.append(out)
        finally:
            await ahead.close()
        assert await ahead.next() is None
        return got

    got = anyio.run(take)
    # made(item) ran before the thread went on: it saw exactly the items made so far
    assert got == [(i, i + 1) for i in range(50)]
    assert source.threads == {"t-ahead"}


def test_no_more_than_one_item_waits_made_but_not_taken() -> None:
    source = Made(20)

    async def take() -> list[int]:
        ahead = ReadAhead(iter(source), lambda item: None, name="t-ahead")
        ahead_by = []
        try:
            for taken in range(1, 11):
                assert await ahead.next() is not None
                with anyio.fail_after(30):  # the next one is made without being asked
                    while len(source.made) == taken:
                        await anyio.sleep(0.001)
                await anyio.sleep(0.01)  # and no further, however long it is given
                ahead_by.append(len(source.made) - taken)
        finally:
            await ahead.close()
        return ahead_by

    assert anyio.run(take) == [1] * 10
    assert len(source.made) == 11  # closed: nothing was made after it


def test_an_error_surfaces_after_the_items_before_it() -> None:
    source = Made(10, fail_at=4)

    async def take() -> list[int]:
        ahead = ReadAhead(iter(source), lambda item: None, name="t-ahead")
        got: list[int] = []
        try:
            while (out := await ahead.next()) is not None:
                got.append(out[0])
        finally:
            await ahead.close()
        return got

    with pytest.raises(ValueError, match="item 4 is bad"):
        anyio.run(take)
    assert source.made == [0, 1, 2, 3]


def test_closing_before_the_first_item_starts_no_thread() -> None:
    source = Made(3)

    async def close() -> None:
        ahead = ReadAhead(iter(source), lambda item: None, name="t-ahead")
        await ahead.close()

    anyio.run(close)
    assert source.made == []
    assert not any(t.name == "t-ahead" for t in threading.enumerate())
