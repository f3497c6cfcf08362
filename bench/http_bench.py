"""HTTP benchmarks: the http sink against a hand-written httpx loop, and webhook intake.

Run: ``python bench/http_bench.py [--records N] [--concurrency C] [--requests R]``.

1. Sink throughput. A minimal ASGI server (uvicorn, its own process, 127.0.0.1) answers every
   POST. The same records are sent one request per record at the same concurrency by (a) a
   hand-written ``httpx.AsyncClient`` loop and (b) the engine's ``http`` sink (template URL,
   codec, idempotency key, circuit breaker). Runs alternate; the best of each is compared.
   Target (issue 5): the sink reaches at least 80% of the hand-written loop.
2. Webhook intake. `engine serve` runs a webhook -> JSON Lines pipeline (HMAC-signed
   requests) in this process; a load generator in another process sends R requests at
   concurrency C. Reports accepted requests/s and checks that every 2xx reached the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-webhook-secret"


# -- the peer ----------------------------------------------------------------------------------
async def fast_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body and answers 200: as little server work as possible."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(
        fast_app, host="127.0.0.1", port=port, log_level="error", lifespan="off", access_log=False
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=b"{}")
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("benchmark server did not start")


def records(count: int) -> list[dict[str, Any]]:
    return [
        {"sku": f"SKU{i:06d}", "quantity": i % 97, "price": i * 0.25, "name": f"Item {i}"}
        for i in range(count)
    ]


# -- 1. sink -------------------------------------------------------------------------------------
async def hand_written(url: str, batch: list[dict[str, Any]], concurrency: int) -> float:
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        items = iter(batch)

        async def worker() -> None:
            for record in items:
                response = await client.post(
                    f"{url}/items/{record['sku']}",
                    content=orjson.dumps(record),
                    headers={"Content-Type": "application/json"},
                )
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(batch) / (time.perf_counter() - started)


async def engine_sink(url: str, batch: list[dict[str, Any]], concurrency: int) -> float:
    from engine.components.base import ComponentContext
    from engine.components.sinks.http import HttpSink, HttpSinkConfig

    config = HttpSinkConfig(
        inputs=["src"],
        url=f"{url}/items/{{sku}}",
        concurrency=concurrency,
        max_connections=concurrency,
        idempotency_key=True,  # type: ignore[arg-type]
        circuit_breaker={"failures": 5},  # type: ignore[arg-type]
    )
    context = ComponentContext("sink", "bench", Path.cwd(), Path.cwd())
    sink = HttpSink(config, context)
    started = time.perf_counter()
    await sink.open()
    try:
        for i in range(0, len(batch), 1000):
            await sink.write(batch[i : i + 1000])
    finally:
        await sink.close(success=True)
    return len(batch) / (time.perf_counter() - started)


def bench_sink(count: int, concurrency: int, rounds: int) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_up(url)
        batch = records(count)
        base: list[float] = []
        ours: list[float] = []
        for _ in range(rounds):
            base.append(asyncio.run(hand_written(url, batch, concurrency)))
            ours.append(asyncio.run(engine_sink(url, batch, concurrency)))
    finally:
        server.terminate()
        server.wait(10)
    return {"hand_written": max(base), "engine_sink": max(ours), "ratio": max(ours) / max(base)}


# -- 2. webhook intake -----------------------------------------------------------------------------
PIPELINE = """
[pipeline]
name = "bench-webhooks"

[sources.hooks]
type = "webhook"
path = "/hooks"
signature = {{ type = "hmac", header = "X-Signature", prefix = "sha256=", secret = "{secret}" }}
queue = 4096

[sinks.out]
type = "file"
inputs = ["hooks"]
path = "{out}"
"""


async def load(port: int, requests: int, concurrency: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/hooks"
    codes: dict[int, int] = {}
    sent = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            for i in sent:
                body = orjson.dumps({"id": i, "event": "inventory.updated", "quantity": i % 50})
                digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                response = await client.post(
                    url,
                    content=body,
                    headers={"X-Signature": f"sha256={digest}", "Content-Type": "application/json"},
                )
                codes[response.status_code] = codes.get(response.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"codes": codes, "seconds": elapsed}


def bench_webhooks(requests: int, concurrency: int) -> dict[str, Any]:
    from engine.pipeline import compile_file
    from engine.runtime.observer import NullObserver
    from engine.serve.app import EngineServer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out = folder / "out.jsonl"
        file = folder / "pipeline.toml"
        file.write_text(PIPELINE.format(secret=SECRET, out=out.as_posix()))
        server = EngineServer(
            compile_file(file), workspace=folder / ".engine", observer=NullObserver()
        )
        port = free_port()
        result: dict[str, Any] = {}

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, "127.0.0.1", port)
                await server.started.wait()
                proc = await anyio.open_process(
                    [sys.executable, __file__, "--load", str(port), str(requests), str(concurrency)]
                )
                async with proc:
                    assert proc.stdout is not None
                    output = b""
                    async for part in proc.stdout:
                        output += part
                    await proc.wait()
                result.update(json.loads(output))
                server.stop()

        anyio.run(main)
        delivered = sum(1 for line in out.read_text().splitlines() if line.strip())
    accepted = int(result["codes"].get("200", 0))
    return {
        "requests": requests,
        "accepted": accepted,
        "delivered_to_sink": delivered,
        "lost": accepted - delivered,
        "codes": result["codes"],
        "requests_per_s": accepted / result["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.load:
        print(json.dumps(asyncio.run(load(*args.load))))
        return
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"concurrency {args.concurrency}"
    )
    sink = bench_sink(args.records, args.concurrency, args.rounds)
    print(f"http sink, {args.records} records, one request each:")
    print(f"  hand-written httpx loop  {sink['hand_written']:10,.0f} records/s")
    print(f"  engine http sink         {sink['engine_sink']:10,.0f} records/s")
    verdict = "ok" if sink["ratio"] >= 0.8 else "BELOW TARGET"
    print(f"  ratio                    {sink['ratio']:10.0%}  (target >= 80%: {verdict})")
    hooks = bench_webhooks(args.requests, args.concurrency * 2)
    print(
        f"webhook intake, {hooks['requests']} signed requests at concurrency "
        f"{args.concurrency * 2}:"
    )
    print(f"  accepted                 {hooks['requests_per_s']:10,.0f} requests/s")
    print(f"  answers                  {hooks['codes']}")
    print(
        f"  accepted {hooks['accepted']}, delivered to the sink {hooks['delivered_to_sink']}, "
        f"lost {hooks['lost']}"
    )
    if sink["ratio"] < 0.8 or hooks["lost"] != 0:
        sys.exit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
