"""Replay protection: one atomic claim per delivery, keyed by id and signed bytes, that lasts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import signal
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from engine.webhooks.replay import Claim, Seen, SqliteReplayStore, replay_keys
from engine.webhooks.replay_redis import RedisReplayStore
from engine.webhooks.signatures import Verified
from tests.support.serve_process import ServeProcess, serve_in_process, sql_pipeline, stored_ids

SECRET = "replay-secret"
GITHUB = f'signature = {{ type = "github", secret = "{SECRET}" }}'
SHOPIFY = f'signature = {{ type = "shopify", secret = "{SECRET}" }}'


def github(body: bytes, delivery: str | None) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return headers


def shopify(body: bytes, delivery: str | None) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    headers = {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}
    if delivery is not None:
        headers["X-Shopify-Webhook-Id"] = delivery
    return headers


def forget(redis_url: str, name: str) -> None:
    """Delete the test pipeline's claims from the shared Redis."""
    from engine.resilience.ratelimit import redis_client

    async def main() -> None:
        client = redis_client(redis_url)
        async for key in client.scan_iter(match=f"engine:webhook-replay:{{{name}/*"):
            await client.delete(key)
        await client.aclose()

    anyio.run(main)


@pytest.fixture(params=["sqlite", "redis"])
def replay_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A unique pipeline name, its replay claims in the workspace or in Redis."""
    name = f"replay-{uuid.uuid4().hex}"
    if request.param == "sqlite":
        monkeypatch.delenv("INTEGRATION_REDIS_URL", raising=False)
        yield name
        return
    url = request.getfixturevalue("redis_url")
    monkeypatch.setenv("INTEGRATION_REDIS_URL", url)
    yield name
    forget(url, name)


def test_of_20_concurrent_copies_exactly_one_is_ingested(
    tmp_path: Path, replay_backend: str
) -> None:
    pipeline = sql_pipeline(tmp_path, name=replay_backend, source_extra=GITHUB)
    body = b'{"id": 7}'
    answers: list[httpx.Response] = []

    async def client(http: httpx.AsyncClient) -> None:
        async def post() -> None:
            answers.append(
                await http.post("/hooks/orders", content=body, headers=github(body, "d-race"))
            )

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(post)

    anyio.run(serve_in_process, pipeline, tmp_path / "home", client)
    accepted = [a for a in answers if a.status_code == 200 and a.json() == {"accepted": 1}]
    others = sorted((a.status_code, a.json().get("duplicate")) for a in answers)
    assert len(accepted) == 1
    # the copies: duplicates once it was delivered, "retry" (409) while it was in flight
    assert set(others) <= {(200, None), (200, True), (409, None)} and len(others) == 20
    assert stored_ids(tmp_path) == [7]


@pytest.mark.parametrize("headers", [github, shopify], ids=["github", "shopify"])
def test_a_captured_body_is_refused_under_a_new_or_missing_id(
    tmp_path: Path, replay_backend: str, headers: Callable[[bytes, str | None], dict[str, str]]
) -> None:
    preset = GITHUB if headers is github else SHOPIFY
    pipeline = sql_pipeline(tmp_path, name=replay_backend, source_extra=preset)
    body, other = b'{"id": 1}', b'{"id": 2}'
    answers: list[dict[str, object]] = []

    async def client(http: httpx.AsyncClient) -> None:
        for content, delivery in (
            (body, "first"),
            (body, "second"),  # the same signed body under a new id
            (body, None),  # ... or under none
            (other, "first"),  # a new body under a delivery id already seen
            (other, "third"),
        ):
            answer = await http.post(
                "/hooks/orders", content=content, headers=headers(content, delivery)
            )
            assert answer.status_code == 200
            answers.append(answer.json())

    anyio.run(serve_in_process, pipeline, tmp_path / "home", client)
    duplicate = {"accepted": 0, "duplicate": True}
    assert answers == [{"accepted": 1}, duplicate, duplicate, duplicate, {"accepted": 1}]
    assert sorted(stored_ids(tmp_path)) == [1, 2]


def test_two_servers_sharing_redis_refuse_each_others_replays(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTEGRATION_REDIS_URL", redis_url)
    name = f"replicas-{uuid.uuid4().hex}"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    pipelines = [sql_pipeline(d, name=name, source_extra=GITHUB) for d in (first, second)]
    body = b'{"id": 5}'
    answers: list[dict[str, object]] = []

    async def client(http: httpx.AsyncClient) -> None:
        answer = await http.post("/hooks/orders", content=body, headers=github(body, "r-1"))
        answers.append(answer.json())

    async def replayed(http: httpx.AsyncClient) -> None:
        for delivery in ("r-1", "r-2"):
            answer = await http.post("/hooks/orders", content=body, headers=github(body, delivery))
            answers.append(answer.json())

    async def both() -> None:
        # two replicas up at once, each with its own workspace: only Redis is shared
        async with anyio.create_task_group() as tg:
            done = anyio.Event()

            async def hold(http: httpx.AsyncClient) -> None:
                await client(http)
                await done.wait()

            tg.start_soon(serve_in_process, pipelines[0], first / "home", hold)
            with anyio.fail_after(30):
                while not answers:
                    await anyio.sleep(0.05)
            await serve_in_process(pipelines[1], second / "home", replayed)
            done.set()

    anyio.run(both)
    duplicate = {"accepted": 0, "duplicate": True}
    forget(redis_url, name)
    assert answers == [{"accepted": 1}, duplicate, duplicate]
    assert stored_ids(first) == [5] and stored_ids(second) == []


def test_a_replay_is_refused_after_a_restart(tmp_path: Path) -> None:
    pipeline = sql_pipeline(tmp_path, source_extra=GITHUB)
    body = b'{"id": 9}'
    answers: list[dict[str, object]] = []
    for _ in range(2):
        server = ServeProcess(pipeline, tmp_path / "home", env={"INTEGRATION_REDIS_URL": ""})
        try:
            server.ready()
            answer = httpx.post(
                server.url + "/hooks/orders", content=body, headers=github(body, "boot"), timeout=60
            )
            answers.append(answer.json())
            server.signal(signal.SIGTERM)
            assert server.wait() == 0, server.stderr
        finally:
            server.stop()
    assert answers == [{"accepted": 1}, {"accepted": 0, "duplicate": True}]
    assert stored_ids(tmp_path) == [9]


def test_a_claim_whose_delivery_failed_is_released(tmp_path: Path) -> None:
    pipeline = sql_pipeline(tmp_path, source_extra=GITHUB)
    with sqlite3.connect(tmp_path / "out.db") as conn:  # the sink cannot write: it has no `id`
        conn.execute("DROP TABLE orders")
        conn.execute("CREATE TABLE orders (note TEXT NOT NULL)")
    body = b'{"id": 3, "note": null}'
    statuses: list[int] = []

    async def client(http: httpx.AsyncClient) -> None:
        answer = await http.post("/hooks/orders", content=body, headers=github(body, "retry-me"))
        statuses.append(answer.status_code)

    failed = anyio.run(serve_in_process, pipeline, tmp_path / "home", client)
    assert statuses == [503]
    assert failed.summary is not None and not failed.summary.ok
    with sqlite3.connect(tmp_path / "out.db") as conn:  # fixed; the provider retries
        conn.execute("DROP TABLE orders")
        conn.execute("CREATE TABLE orders (id INTEGER NOT NULL, note TEXT)")
    anyio.run(serve_in_process, pipeline, tmp_path / "home", client)
    assert statuses == [503, 200]
    assert stored_ids(tmp_path) == [3]


Store = SqliteReplayStore | RedisReplayStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """A replay store and a scope no other test uses."""
    scope = f"store-{uuid.uuid4().hex}"
    if request.param == "sqlite":
        yield SqliteReplayStore(tmp_path / "state.db"), scope
        return
    url = request.getfixturevalue("redis_url")
    yield RedisReplayStore(url), scope
    forget(url, scope)


def test_a_store_claims_all_keys_or_none_leases_then_confirms(store: tuple[Store, str]) -> None:
    replay, scope = store

    def keys(delivery: str, digest: str, where: str = "p") -> tuple[str, ...]:
        return replay_keys(f"{scope}/{where}", Verified(delivery, digest * 64))

    async def main() -> None:
        claim = await replay.claim(keys("id-1", "a"), ttl=60, lease=60)
        assert isinstance(claim, Claim)
        assert await replay.claim(keys("id-2", "a"), 60, 60) is Seen.IN_FLIGHT  # same body
        assert isinstance(await replay.claim(keys("id-1", "a", "q"), 60, 60), Claim)  # scoped
        # the refused claim took nothing: id-2 with another body is still free
        assert isinstance(await replay.claim(keys("id-2", "b"), 60, 60), Claim)
        await replay.confirm(claim)
        assert await replay.claim(keys("id-1", "c"), 60, 60) is Seen.DELIVERED  # same id
        crashed = await replay.claim(keys("id-3", "d"), ttl=60, lease=0.001)
        assert isinstance(crashed, Claim)  # its process dies: the lease runs out on its own
        retried: Claim | Seen = Seen.IN_FLIGHT
        while retried is Seen.IN_FLIGHT:
            await anyio.sleep(0.01)
            retried = await replay.claim(keys("id-3", "d"), 60, 60)
        assert isinstance(retried, Claim)
        await replay.release(crashed)  # a stale token releases nothing
        assert await replay.claim(keys("id-3", "d"), 60, 60) is Seen.IN_FLIGHT
        await replay.release(retried)
        assert isinstance(await replay.claim(keys("id-3", "d"), 60, 60), Claim)
        await replay.aclose()

    anyio.run(main)
