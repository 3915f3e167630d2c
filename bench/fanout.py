"""Fan-out benchmark (run by hand, not a test): one change to N websocket subscribers.

    .venv/bin/python -m bench.fanout [--subscribers 1000] [--rounds 20]

Starts the app under uvicorn in a subprocess (one process) on a fresh database
(`DATABASE_URL`'s server, else the embedded PostgreSQL in var/bench-pgdata),
opens the subscribers as graphql-transport-ws clients from this process, then,
one change at a time, posts an `adjustStock` mutation over HTTP and records when
each subscriber receives its event. Reports delivery latency (from sending the
mutation to receipt; it includes the mutation itself, the relay, the broadcast
backend and the fan-out) for a baseline of 1 subscriber and for N, measured in
the same run, and the server's resident memory per idle subscriber.

Clients and server share the machine: on a small box the figures include the
clients' own CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._db import fresh_database  # noqa: E402
from gql_inventory.db import (  # noqa: E402
    create_engine,
    make_sessionmaker,
)

TOKEN = "bench-admin"
SKU = "BENCH-1"
SUBSCRIBE = """subscription($skus: [String!]) { stockChanged(skus: $skus) {
  cursor sku kind onHand reserved available version occurredAt location { name } } }"""
ADJUST = """mutation($sku: String!) { adjustStock(input: {sku: $sku, delta: 1, reason: FOUND}) {
  userErrors { code } } }"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _make_database() -> tuple[str, str]:
    """(server URL, URL of a fresh migrated database with one stocked SKU)."""
    server, url = await fresh_database("gqlinv_bench")
    from sqlalchemy import insert

    from gql_inventory.inventory.ledger import apply_movement, ensure_level
    from gql_inventory.models import Location, MovementKind, Product, Variant

    engine = create_engine(url)
    async with make_sessionmaker(engine).begin() as session:
        location = (
            await session.execute(
                insert(Location).values(name="Main", is_default=True).returning(Location.id)
            )
        ).scalar_one()
        product = (
            await session.execute(
                insert(Product).values(handle="bench", title="Bench").returning(Product.id)
            )
        ).scalar_one()
        variant = (
            await session.execute(
                insert(Variant)
                .values(
                    product_id=product,
                    sku=SKU,
                    title="Default Title",
                    options=[],
                    position=0,
                    price_amount=100,
                    currency_code="USD",
                )
                .returning(Variant.id)
            )
        ).scalar_one()
        level = await ensure_level(session, variant_id=variant, location_id=location)
        await apply_movement(session, level_id=level, kind=MovementKind.RECEIPT, on_hand_delta=10)
    await engine.dispose()
    return server, url


async def _drop_database(server: str, url: str) -> None:
    name = urlsplit(url).path.strip("/")
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _spawn(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gql_inventory.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        cwd=ROOT,
        env=env,
    )


@contextlib.asynccontextmanager
async def _server(database_url: str) -> AsyncIterator[tuple[str, int]]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADMIN_TOKENS": TOKEN,
        "EXPIRY_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("BROADCAST_URL", None)
    if os.environ.get("BENCH_BROADCAST_URL"):  # e.g. redis://127.0.0.1:6379/0
        env["BROADCAST_URL"] = os.environ["BENCH_BROADCAST_URL"]
    process = _spawn(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("server did not start")
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), 30)
        except TimeoutError:
            process.kill()


async def _wait_subscribed(base: str, count: int) -> None:
    for _ in range(6000):
        if await _metric(base, 'gql_inventory_subscribers{kind="stock"}') >= count:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("subscribers did not register")


async def _metric(base: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=base) as client:
        body = (await client.get("/metrics")).text
    found = re.search("^" + re.escape(name) + r" (\S+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@dataclass
class Subscribers:
    """N graphql-transport-ws clients, each recording when its events arrive."""

    url: str
    count: int
    arrivals: list[list[float]] = field(default_factory=list)
    _sockets: list[Any] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    _received: int = 0
    _expected: int = 0
    _all_in: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> None:
        gate = asyncio.Semaphore(50)

        async def one(index: int) -> None:
            async with gate:
                ws = await websockets.connect(
                    self.url,
                    subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                    max_queue=None,
                    compression=None,
                    ping_interval=None,
                )
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                await ws.recv()
                payload = {"query": SUBSCRIBE, "variables": {"skus": [SKU]}}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                self._sockets[index] = ws
                self._readers[index] = asyncio.create_task(self._read(index, ws))

        self.arrivals = [[] for _ in range(self.count)]
        self._sockets = [None] * self.count
        self._readers = [None] * self.count  # type: ignore[list-item]
        await asyncio.gather(*(one(i) for i in range(self.count)))

    async def _read(self, index: int, ws: Any) -> None:
        arrivals = self.arrivals[index]
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                arrivals.append(time.perf_counter())
                self._received += 1
                if self._received >= self._expected:
                    self._all_in.set()

    def expect(self, rounds: int) -> asyncio.Event:
        self._expected = rounds * self.count
        self._all_in = asyncio.Event()
        if self._received >= self._expected:
            self._all_in.set()
        return self._all_in

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self._sockets), return_exceptions=True)


async def _measure(
    base: str, subscribers: Subscribers, rounds: int, *, warmup: int = 0
) -> list[float]:
    """Latencies (ms) of `rounds` changes (after `warmup` ones not counted), each
    delivered to every subscriber."""
    sent: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for r in range(warmup + rounds):
            done = subscribers.expect(r + 1)
            t0 = time.perf_counter()
            response = await client.post(
                "/graphql",
                json={"query": ADJUST, "variables": {"sku": SKU}},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert response.json()["data"]["adjustStock"]["userErrors"] == []
            sent.append(t0)
            await asyncio.wait_for(done.wait(), 120)
    return [
        (arrivals[r] - sent[r]) * 1000
        for arrivals in subscribers.arrivals
        for r in range(warmup, warmup + rounds)
    ]


def _summary(label: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{label:>14}  {len(ordered):>10}  {p50:>8.1f}  {p99:>8.1f}  {ordered[-1]:>8.1f}"


async def main(count: int, rounds: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count * 2 + 256)), hard))
    server_url, database_url = await _make_database()
    try:
        async with _server(database_url) as (base, pid):
            ws_url = base.replace("http", "ws") + "/graphql"
            # Warm-up, then the baseline: one subscriber.
            baseline = Subscribers(ws_url, 1)
            await baseline.open()
            await _wait_subscribed(base, 1)
            base_latencies = await _measure(base, baseline, rounds, warmup=3)
            await baseline.close()
            await asyncio.sleep(1.0)
            rss_before = _rss_kib(pid)

            many = Subscribers(ws_url, count)
            await many.open()
            await _wait_subscribed(base, count)
            await asyncio.sleep(1.0)
            rss_idle = _rss_kib(pid)
            latencies = await _measure(base, many, rounds)
            rss_after = _rss_kib(pid)
            await many.close()

        print(f"fan-out: 1 server process, {rounds} changes, one event per subscriber each")
        print(
            f"{'subscribers':>14}  {'deliveries':>10}  {'p50 ms':>8}  {'p99 ms':>8}  {'max ms':>8}"
        )
        print(_summary("1 (baseline)", base_latencies))
        print(_summary(str(count), latencies))
        per = (rss_idle - rss_before) / count
        print(
            f"server RSS: {rss_before / 1024:.1f} MiB without subscribers, "
            f"{rss_idle / 1024:.1f} MiB with {count} idle subscribers "
            f"({per:.1f} KiB each), {rss_after / 1024:.1f} MiB after the run"
        )
    finally:
        await _drop_database(server_url, database_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.subscribers, args.rounds))
