"""Token buckets: what the limiter schedules, in one process and in three sharing Redis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import anyio
import pytest

from engine.resilience.ratelimit import LocalTokenBucket, RateLimitSpec, build_limiter, parse_rate
from engine.settings import EngineSettings

RATE = 60.0
BURST = 6
TAKEN = 200  # tokens each of three processes takes: 600 in all, ten seconds' worth

WORKER = textwrap.dedent(
    """
    import sys, anyio
    from engine.resilience.ratelimit import RedisTokenBucket

    url, key = sys.argv[1], sys.argv[2]
    rate, burst, taken = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

    async def main():
        bucket = RedisTokenBucket(url, key, rate, burst=burst)
        async def worker(n):
            for _ in range(n):
                slot = await bucket.schedule()
                print(slot.at, slot.due)
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(worker, taken // 10)
        await bucket.aclose()

    anyio.run(main)
    """
)


def _check_schedule(slots: list[tuple[float, float]], rate: float, burst: int) -> None:
    """What the limiter decided is a token bucket's decision: each token falls due exactly when
    a bucket of ``rate`` and ``burst``, taken from at those very instants, lets it go, and never
    more than ``burst + rate * T`` tokens fall due in any window of ``T`` seconds.

    The instants are the limiter's own (when each token was taken and when it falls due), so
    the check holds however slowly the machine ran the callers.
    """
    taken = sorted(at for at, _ in slots)
    due = sorted(d for _, d in slots)
    assert len(due) == len(slots) > burst
    clock = [taken[0]]
    model = LocalTokenBucket(rate, burst, clock=lambda: clock[0])
    for k, at in enumerate(taken):
        clock[0] = at
        expected = model.schedule().due
        assert abs(due[k] - expected) < 1e-3, (k, at, due[k], expected)
    for i in range(len(due)):
        # tokens i..j all fall due within due[j] - due[i] seconds
        for j in range(i + burst, min(len(due), i + burst + 20)):
            assert j - i + 1 <= burst + rate * (due[j] - due[i]) + 0.01, (i, j, due[i], due[j])


def test_a_shared_bucket_schedules_three_processes_as_one_bucket(redis_url: str) -> None:
    """Three processes taking 600 tokens of one 60/s Redis bucket are scheduled over about ten
    seconds as one bucket, not three: measured on the limiter's decisions, not the wall clock."""
    key = f"test-{uuid.uuid4().hex}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url, key, str(RATE), str(BURST), str(TAKEN)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    slots = [
        (float(at), float(due))
        for out, _ in outputs
        for at, due in map(str.split, out.split("\n")[:-1])
    ]
    assert len(slots) == 3 * TAKEN
    _check_schedule(slots, RATE, BURST)
    span = max(d for _, d in slots) - min(at for at, _ in slots)
    # one shared bucket: 594 tokens past the burst need 9.9 s of refill; three separate
    # buckets would have scheduled them in a third of that
    assert span >= (3 * TAKEN - BURST) / RATE - 1e-3, span


def test_a_local_bucket_shared_by_tasks_keeps_the_rate() -> None:
    """Twenty tasks taking 600 tokens of one in-process bucket: the limiter's decisions."""

    async def main() -> list[tuple[float, float]]:
        bucket = LocalTokenBucket(RATE, BURST)
        slots: list[tuple[float, float]] = []

        async def worker(n: int) -> None:
            for i in range(30):
                slot = bucket.schedule()
                slots.append((slot.at, slot.due))
                # now and then a pause long enough for the bucket to refill part of its burst
                await anyio.sleep(0.05 if (i * 7 + n) % 11 == 0 else 0)

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(worker, n)
        return slots

    slots = anyio.run(main)
    _check_schedule(slots, RATE, BURST)
    span = max(d for _, d in slots) - min(at for at, _ in slots)
    assert span >= (600 - BURST) / RATE - 1e-3, span


def test_parse_rate_units() -> None:
    assert parse_rate("100/s") == 100
    assert parse_rate("6000/min") == 100
    assert parse_rate("5/100ms") == 50
    assert parse_rate("1/h") == pytest.approx(1 / 3600)
    with pytest.raises(ValueError, match="units"):
        parse_rate("100/fortnight")
    spec = RateLimitSpec(rate="100/s")
    assert spec.per_second == 100 and spec.burst_size == 10


def test_local_bucket_admits_the_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = LocalTokenBucket(rate=10, burst=3, clock=lambda: now[0])
    waits = [bucket.reserve() for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3] == pytest.approx(0.1) and waits[4] == pytest.approx(0.2)


def test_redis_url_from_the_environment() -> None:
    env = EngineSettings.load({"INTEGRATION_REDIS_URL": "redis://127.0.0.1:6379/15"})
    spec = RateLimitSpec(rate="5/s")
    assert spec.redis_url(env.integration_redis_url) == "redis://127.0.0.1:6379/15"
    assert RateLimitSpec(rate="5/s", redis=False).redis_url(env.integration_redis_url) is None
    unset = EngineSettings.load({})
    assert isinstance(
        build_limiter(spec, "k", default_redis=unset.integration_redis_url), LocalTokenBucket
    )


def test_two_clients_of_one_key_share_its_burst(redis_url: str) -> None:
    from engine.resilience.ratelimit import RedisTokenBucket

    async def main() -> list[tuple[float, float]]:
        key = f"test-{uuid.uuid4().hex}"
        a = RedisTokenBucket(redis_url, key, rate=20, burst=2)
        b = RedisTokenBucket(redis_url, key, rate=20, burst=2)
        try:
            slots = [await a.schedule(), await b.schedule(), await a.schedule(), await b.schedule()]
            return [(slot.at, slot.due) for slot in slots]
        finally:
            await a.aclose()
            await b.aclose()

    slots = anyio.run(main)
    # the burst of 2 goes at once; the third and fourth token fall due as ONE bucket fed
    # by both clients schedules them (two separate buckets would let them go at once too)
    assert slots[0][1] == slots[0][0] and slots[1][1] == slots[1][0]
    _check_schedule(slots, 20, 2)
