"""Group commit of reserveStock, A/B below the HTTP layer (run by hand, not a test).

    DATABASE_URL=postgresql://... .venv/bin/python -m bench.reserve_batch [--seconds 8]

On a fresh database (23 SKUs in two locations, 1,000,000 units each) it runs, back to
back in one process, for each scenario (16 clients on 23 SKUs; 64 clients on one SKU):

- floor: the reservation transaction straight through asyncpg (BEGIN; one statement
  with the conditional UPDATE, the reservation, its line and its ledger row; COMMIT);
- single: `reserving.front.reserve_stock` with group commit off (one ORM transaction each);
- batched: `reserving.front.reserve_stock` through the `ReserveBatcher`;
- hooked: the same with `--endpoints` (default 3) webhook endpoints subscribed to
  INVENTORY_LEVEL_UPDATED (the outbox write of issue 17, ADR 0020), run right after
  `batched` on the same database.

Each client loops for `--seconds`. Prints requests/s, p50/p99 and this process's CPU
time per request (`time.process_time`: the domain and driver work, client loop included,
PostgreSQL's own CPU not), and each path's ratio to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._db import add_endpoints, fresh_database  # noqa: E402
from gql_inventory.reserving.front import reserve_stock  # noqa: E402
from gql_inventory.services import Services  # noqa: E402
from gql_inventory.settings import Settings  # noqa: E402
from gql_inventory.stock.levels import LineRequest  # noqa: E402

SKUS = 23

_FLOOR = """
WITH level AS (
    UPDATE stock_levels SET reserved = reserved + 1, version = version + 1
     WHERE id = $1 AND on_hand - reserved >= 1
    RETURNING id, variant_id, location_id, on_hand, reserved, version
), r AS (
    INSERT INTO reservations (id, status, expires_at, ttl_seconds)
    SELECT $2, 'ACTIVE', now() + interval '900 seconds', 900 FROM level
), line AS (
    INSERT INTO reservation_lines (reservation_id, stock_level_id, variant_id, location_id,
                                   quantity)
    SELECT $2, id, variant_id, location_id, 1 FROM level
)
INSERT INTO stock_movements (stock_level_id, variant_id, location_id, kind, on_hand_delta,
    reserved_delta, on_hand_after, reserved_after, version, reference, actor)
SELECT id, variant_id, location_id, 'RESERVATION', 0, 1, on_hand, reserved, version,
       'reservation:' || $2::text, 'storefront'
  FROM level
RETURNING id
"""


async def seed(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO locations (name, priority, is_default) VALUES ('Main', 10, true),
                ('Store', 20, false);
            INSERT INTO products (handle, title) VALUES ('bench', 'Bench');
            INSERT INTO variants (product_id, sku, title, options, position, price_amount,
                                  currency_code, low_stock_threshold)
            SELECT 1, 'SKU-' || n, 'V' || n, '[]', n, 1000, 'USD', 5
              FROM generate_series(1, 23) n;
            INSERT INTO stock_levels (variant_id, location_id, on_hand, version)
            SELECT v.id, l.id, 1000000, 1 FROM variants v, locations l ORDER BY v.id, l.id;
            INSERT INTO stock_movements (stock_level_id, variant_id, location_id, kind,
                on_hand_delta, reserved_delta, on_hand_after, reserved_after, version, actor)
            SELECT id, variant_id, location_id, 'RECEIPT', 1000000, 0, 1000000, 0, 1, 'import'
              FROM stock_levels ORDER BY id;
            """
        )
    finally:
        await conn.close()


async def drive(
    clients: int, seconds: float, call: Callable[[int], Awaitable[None]]
) -> tuple[int, list[float], float]:
    """Run `clients` loops of `call(client)` for `seconds`; (requests, latencies, CPU s)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(client: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(client)
            latencies.append(time.perf_counter() - started)

    cpu = time.process_time()
    await asyncio.gather(*(loop(c) for c in range(clients)))
    return len(latencies), latencies, time.process_time() - cpu


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--in-flight", type=int, default=None)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--only-batched", action="store_true", help="skip floor and single")
    args = parser.parse_args()
    _, url = await fresh_database("gqlinv_bench_batch")
    await seed(url)
    conn = await asyncpg.connect(url)
    level_of = {
        r["sku"]: r["id"]
        for r in await conn.fetch(
            "SELECT v.sku, min(sl.id) AS id FROM variants v JOIN stock_levels sl "
            "ON sl.variant_id = v.id GROUP BY v.sku"
        )
    }
    await conn.close()
    skus = sorted(level_of)

    async def floor(clients: int, pick: Callable[[int], str]) -> tuple[int, list[float], float]:
        """The floor on a pool of at most 30 connections (the app's default pool + overflow;
        the server is shared)."""
        pool = await asyncpg.create_pool(url, min_size=min(clients, 30), max_size=30)

        async def call(c: int) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.fetchval(_FLOOR, level_of[pick(c)], uuid.uuid4())

        try:
            await drive(clients, 1.0, call)
            return await drive(clients, args.seconds, call)
        finally:
            await pool.close()

    def services_with(batch: int) -> Services:
        settings = Settings(reserve_batch_max=batch, live_events=False, log_level="WARNING")
        services = Services.create(settings, url, live_events=False)
        if args.in_flight is not None and services.reserve_batcher is not None:
            services.reserve_batcher._in_flight = args.in_flight
        return services

    rows: list[tuple[str, str, int, list[float], float, float]] = []
    for label, clients, pick in (
        ("16 clients, 23 SKUs", 16, lambda c: skus[c % SKUS]),
        ("64 clients, 1 SKU", 64, lambda c: skus[0]),
    ):
        if not args.only_batched:
            n, lat, cpu = await floor(clients, pick)
            rows.append((label, "floor", n, lat, cpu, n / args.seconds))
        paths = [("batched", 256), ("hooked", 256)]
        if not args.only_batched:
            paths.insert(0, ("single", 0))
        for path, batch in paths:
            if path == "hooked":
                await add_endpoints(url, args.endpoints, ["INVENTORY_LEVEL_UPDATED"])
            services = services_with(batch)

            async def call(c: int, services: Services = services, pick: Any = pick) -> None:
                await reserve_stock(
                    services,
                    [LineRequest(pick(c), 1)],
                    ttl_seconds=None,
                    idempotency_key=None,
                    actor="storefront",
                )

            await drive(clients, 1.0, call)  # warm-up: connections, statement caches
            n, lat, cpu = await drive(clients, args.seconds, call)
            rows.append((label, path, n, lat, cpu, n / args.seconds))
            await services.close()
            if path == "hooked":
                drop = await asyncpg.connect(url)
                await drop.execute("DELETE FROM webhook_endpoints")  # rows go with them
                await drop.close()
    print(
        f"{'scenario':>20} {'path':>8} {'req/s':>7} {'x floor':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'CPU ms/req':>10}"
    )
    floor_rate = 0.0
    for label, path, n, lat, cpu, rate in rows:
        if path == "floor" or (args.only_batched and path == "batched"):
            floor_rate = rate  # --only-batched: ratios against `batched`
        print(
            f"{label:>20} {path:>8} {rate:7.0f} {rate / floor_rate:7.2f} {pct(lat, 0.5):7.1f} "
            f"{pct(lat, 0.99):7.1f} {cpu / n * 1000:10.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
