"""Reservation throughput benchmark (run by hand, not a test).

    .venv/bin/python -m bench.reserve [--ops 400] [--clients 16]

Runs the app in-process (httpx's ASGI transport: GraphQL parsing, resolvers, the
domain and PostgreSQL, no network) on a fresh database of the demo catalog with
plenty of stock, and times `reserveStock` of one unit (each reservation is then
released, outside the timing, so stock never runs out). Scenarios, measured in
the same run:

- baseline: one client, one request at a time;
- N clients at once on N different SKUs (no shared rows);
- N clients at once on ONE SKU (every request waits for the same row lock).

Reports requests/s, p50/p99 latency, and each figure's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._db import fresh_database  # noqa: E402
from gql_inventory.app import create_app  # noqa: E402
from gql_inventory.catalog.demo import seed_demo_catalog  # noqa: E402
from gql_inventory.db import (  # noqa: E402
    create_engine,
    make_sessionmaker,
)
from gql_inventory.inventory.adjust import AdjustmentReason, set_stock  # noqa: E402
from gql_inventory.settings import Settings  # noqa: E402

RESERVE = """mutation($sku: String!) { reserveStock(input: {lines: [{sku: $sku, quantity: 1}]}) {
  reservation { id } userErrors { code } } }"""
RELEASE = (
    """mutation($id: ID!) { releaseReservation(reservationId: $id) { userErrors { code } } }"""
)


async def make_database() -> str:
    """A fresh migrated database holding the demo catalog, 1,000,000 units per SKU."""
    _, url = await fresh_database("gqlinv_bench_reserve")
    engine = create_engine(url)
    async with make_sessionmaker(engine).begin() as session:
        await seed_demo_catalog(session)
    async with engine.connect() as c:
        skus = [r[0] for r in await c.exec_driver_sql("SELECT sku FROM variants ORDER BY id")]
    async with make_sessionmaker(engine).begin() as session:
        for sku in skus:
            await set_stock(
                session,
                sku=sku,
                location_id=None,
                on_hand=1_000_000,
                reason=AdjustmentReason.RECEIVED,
            )
    await engine.dispose()
    return url


async def run(client: httpx.AsyncClient, skus: list[str], ops: int) -> tuple[float, list[float]]:
    """`ops` reservations spread over len(skus) concurrent clients; (seconds, latencies)."""
    latencies: list[float] = []
    created: list[str] = []
    per_client = ops // len(skus)

    async def worker(sku: str) -> None:
        for _ in range(per_client):
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json={"query": RESERVE, "variables": {"sku": sku}}
            )
            latencies.append(time.perf_counter() - started)
            payload = response.json()["data"]["reserveStock"]
            assert payload["userErrors"] == [], payload
            created.append(payload["reservation"]["id"])

    started = time.perf_counter()
    await asyncio.gather(*(worker(sku) for sku in skus))
    elapsed = time.perf_counter() - started
    for rid in created:
        await client.post("/graphql", json={"query": RELEASE, "variables": {"id": rid}})
    return elapsed, latencies


def pct(values: list[float], q: float) -> float:
    """The q-quantile of `values`, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    url = await make_database()
    app = create_app(
        Settings(expiry_interval_seconds=0, live_events=False, log_level="WARNING"),
        database_url=url,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        async with client.stream("GET", "/healthz"):
            pass
        r = await client.post(
            "/graphql",
            json={"query": "{ products(first: 100) { edges { node { variants { sku } } } } }"},
        )
        skus = [
            v["sku"] for e in r.json()["data"]["products"]["edges"] for v in e["node"]["variants"]
        ]
        await run(client, skus[:1], 50)  # warm-up
        rows = []
        base_s, base_l = await run(client, skus[:1], args.ops)
        rows.append(("baseline: 1 client", args.ops / base_s, base_l))
        spread_s, spread_l = await run(client, skus[: args.clients], args.ops)
        rows.append((f"{args.clients} clients, {args.clients} SKUs", args.ops / spread_s, spread_l))
        hot_s, hot_l = await run(client, skus[:1] * args.clients, args.ops)
        rows.append((f"{args.clients} clients, 1 SKU", args.ops / hot_s, hot_l))
    await app.state.services.close()
    base_rate, base_p50 = rows[0][1], pct(rows[0][2], 0.5)
    print(f"reserveStock, {args.ops} requests per scenario, in-process ASGI, one process")
    print(f"{'scenario':>24} {'req/s':>8} {'x base':>7} {'p50 ms':>8} {'x base':>7} {'p99 ms':>8}")
    for label, rate, lat in rows:
        p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
        print(
            f"{label:>24} {rate:8.0f} {rate / base_rate:7.2f} {p50:8.1f} "
            f"{p50 / base_p50:7.2f} {p99:8.1f}"
        )
    print(f"statistics: mean latency baseline {statistics.mean(base_l) * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
