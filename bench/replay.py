"""Forged-cursor replays against a cached read (issue 15 fault 8): the p50 of a cached
`variant(sku)` read, quiet and while 3 websockets x 20 anonymous subscriptions resume from
`base64("stock:0")` on a ledger of ~46,000 events.

``python -m bench.replay [--events 46300] [--env KEY=VALUE ...]`` prints one JSON line:
the quiet and loaded p50/p99 in ms, and how the subscriptions were answered. `--env
REPLAY_MAX_EVENTS=1000000` shows the same load with the window out of the way (every
subscription replays the whole ledger, within the budgets and chunks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bench._db import drop_database, fresh_database
from bench.server import Processes, Serve
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.live.cursors import encode_cursor
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.support.catalog import make_catalog

READ = "query($sku: String!) { variant(sku: $sku) { sku available } }"
SUBSCRIBE = """subscription($after: String) { stockChanged(after: $after) {
  cursor sku kind onHand reserved available version } }"""


async def seed(url: str, events: int) -> None:
    """The test catalog, then `events` adjustments of one level (1,000 per transaction)."""
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions.begin() as session:
        catalog = await make_catalog(session)
    variant = catalog.variants["MUG"]
    left = events
    while left > 0:
        async with sessions.begin() as session:
            level_id = (
                await session.execute(
                    text("SELECT id FROM stock_levels WHERE variant_id = :v"), {"v": variant}
                )
            ).scalar_one()
            for _ in range(min(left, 1000)):
                await apply_movement(
                    UnitOfWork(session, actor="system"),
                    level_id=level_id,
                    kind=MovementKind.ADJUSTMENT,
                    on_hand_delta=1,
                )
        left -= 1000
    await engine.dispose()


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def reads(base: str, count: int) -> list[float]:
    """`count` cached reads one after the other; their latencies in ms."""
    out = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json={"query": READ, "variables": {"sku": "MUG"}}
            )
            out.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return out


async def forged(ws_url: str, per_socket: int, answers: dict[str, int]) -> None:
    """One websocket with `per_socket` subscriptions from a forged cursor; counts the
    first answer of each (error code or "next") in `answers`, then keeps reading."""
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await ws.recv()
        for i in range(per_socket):
            payload = {"query": SUBSCRIBE, "variables": {"after": encode_cursor("stock", 0)}}
            await ws.send(json.dumps({"id": str(i), "type": "subscribe", "payload": payload}))
        seen: set[str] = set()
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            op = message.get("id")
            if op is None or op in seen:
                continue
            seen.add(op)
            kind = message["type"]
            if kind == "error":
                kind = message["payload"][0].get("extensions", {}).get("code", "error")
            answers[kind] = answers.get(kind, 0) + 1


async def main(events: int, env: dict[str, str]) -> dict[str, Any]:
    server_url, url = await fresh_database("replay")
    processes = Processes()
    try:
        await seed(url, events)
        serve = Serve(
            processes, port=18731, database_url=url, log_dir=Path(tempfile.mkdtemp()), extra_env=env
        )
        await asyncio.to_thread(serve.wait_ready)
        await asyncio.sleep(5)  # the relay positions the seeded ledger
        await reads(serve.base, 50)  # warm the cache
        quiet = await reads(serve.base, 300)
        answers: dict[str, int] = {}
        clients = [asyncio.create_task(forged(serve.ws_url, 20, answers)) for _ in range(3)]
        loaded = await reads(serve.base, 300)  # from the moment the subscriptions go out
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        serve.stop()
        return {
            "events": events,
            "env": env,
            "quiet_p50_ms": round(statistics.median(quiet), 2),
            "quiet_p99_ms": round(p(quiet, 0.99), 2),
            "loaded_p50_ms": round(statistics.median(loaded), 2),
            "loaded_p99_ms": round(p(loaded, 0.99), 2),
            "ratio_p50": round(statistics.median(loaded) / statistics.median(quiet), 2),
            "answers": answers,
        }
    finally:
        processes.stop_all()
        await drop_database(server_url, url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=46_300)
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    print(json.dumps(asyncio.run(main(args.events, env))))
