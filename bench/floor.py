"""The raw floor: the reservation transaction sent straight through asyncpg.

    python -m bench.floor URL --clients 16 --duration 8 --levels 1,2,3

Runs in its own process (the orchestrator starts it with `run_floor`), so its CPU is
not the orchestrator's. `clients` connections each loop, for `duration` seconds, over
one transaction per reservation of one unit, the statements DESIGN.md's reserve path
needs, nothing else:

    BEGIN;
    UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
     WHERE id = $1 AND reserved + 1 <= on_hand RETURNING ...;       -- the conditional update
    INSERT INTO reservations ...;                                   -- the reservation
    INSERT INTO reservation_lines ...;                              -- its line
    INSERT INTO stock_movements ...;                                -- the ledger row
    COMMIT;

Connection i starts at level i and moves on by one per transaction, so on uniform SKUs
the connections spread over the levels; with one level every transaction waits for the
same row lock. Prints one JSON line: transactions, seconds, refusals, p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent

UPDATE = """
UPDATE stock_levels
   SET reserved = reserved + 1, version = version + 1, updated_at = now()
 WHERE id = $1 AND reserved + 1 <= on_hand
RETURNING variant_id, location_id, on_hand, reserved, version"""
INSERT_RESERVATION = """
INSERT INTO reservations (id, status, expires_at, ttl_seconds) VALUES ($1, 'ACTIVE', $2, 900)"""
INSERT_LINE = """
INSERT INTO reservation_lines (reservation_id, stock_level_id, variant_id, location_id, quantity)
VALUES ($1, $2, $3, $4, 1)"""
INSERT_MOVEMENT = """
INSERT INTO stock_movements (stock_level_id, variant_id, location_id, kind, on_hand_delta,
    reserved_delta, on_hand_after, reserved_after, version, reference, actor)
VALUES ($1, $2, $3, 'RESERVATION', 0, 1, $4, $5, $6, $7, 'storefront')"""


@dataclass(frozen=True)
class FloorResult:
    """One floor run: committed reservations, wall seconds, refusals (no stock), latencies."""

    transactions: int
    seconds: float
    refused: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """Committed reservations per second."""
        return self.transactions / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` (nearest rank), 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _client(
    url: str, levels: list[int], start: int, stop_at: float, latencies: list[float]
) -> int:
    """Reserve in a loop until `stop_at` (monotonic); returns how many were refused."""
    conn = await asyncpg.connect(url)
    refused = 0
    n = start
    try:
        while time.monotonic() < stop_at:
            level = levels[n % len(levels)]
            n += 1
            began = time.monotonic()
            async with conn.transaction():
                row = await conn.fetchrow(UPDATE, level)
                if row is None:
                    refused += 1
                    continue
                rid = uuid.uuid4()
                expires = datetime.now(UTC) + timedelta(seconds=900)
                await conn.execute(INSERT_RESERVATION, rid, expires)
                await conn.execute(INSERT_LINE, rid, level, row["variant_id"], row["location_id"])
                await conn.execute(
                    INSERT_MOVEMENT,
                    level,
                    row["variant_id"],
                    row["location_id"],
                    row["on_hand"],
                    row["reserved"],
                    row["version"],
                    f"reservation:{rid}",
                )
            latencies.append((time.monotonic() - began) * 1000)
    finally:
        await conn.close()
    return refused


async def measure(url: str, levels: list[int], clients: int, duration: float) -> FloorResult:
    """`clients` connections reserving on `levels` for `duration` seconds (after a 1 s
    warm-up of the same load, not counted)."""
    warm: list[float] = []
    stop = time.monotonic() + 1.0
    await asyncio.gather(*(_client(url, levels, i, stop, warm) for i in range(clients)))
    latencies: list[float] = []
    began = time.monotonic()
    stop = began + duration
    refused = await asyncio.gather(
        *(_client(url, levels, i, stop, latencies) for i in range(clients))
    )
    seconds = time.monotonic() - began
    return FloorResult(
        len(latencies),
        seconds,
        sum(refused),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
    )


def run_floor(url: str, levels: list[int], clients: int, duration: float) -> FloorResult:
    """Run `measure` in a separate Python process and return its result.

    Raises `RuntimeError` when the process fails.
    """
    command = [
        sys.executable,
        "-m",
        "bench.floor",
        url,
        "--clients",
        str(clients),
        "--duration",
        str(duration),
        "--levels",
        ",".join(map(str, levels)),
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=duration + 120, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"raw floor process failed: {last}")
    return FloorResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description="raw floor of reserveStock")
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--levels", required=True, help="stock level ids, comma-separated")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    result = asyncio.run(measure(args.url, levels, args.clients, args.duration))
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    main()
