"""Many processes on one database: real servers side by side (two `serve` processes, or
one with two uvicorn workers), each with its own pool, both serving, and one expiry
sweeper and one pending-payment check at a time across all of them (advisory locks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.jobs.payment_check import PAYMENT_CHECK_LOCK_KEY
from gql_inventory.stock.expiry import SWEEPER_LOCK_KEY
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.live import LiveServer, ServerFactory, eventually, reserve_on

SWEEPS = "gql_inventory_expiry_sweeps_total"
CHECKS = "gql_inventory_payment_checks_total"
SKIPPED = 'result="skipped_lock"'
#: Both background jobs run often, so the servers keep racing for their locks.
BUSY_JOBS = {
    "EXPIRY_INTERVAL_SECONDS": "0.1",
    "PENDING_PAYMENT_CHECK_INTERVAL_SECONDS": "0.1",
    "PENDING_PAYMENT_MIN_AGE_SECONDS": "0",
    "DB_POOL_SIZE": "3",
    "DB_MAX_OVERFLOW": "2",
}


@pytest.fixture
async def held_locks(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of "another process" holding the sweeper's and the payment check's
    locks until the test releases them (`pg_advisory_unlock_all`)."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("SELECT pg_advisory_lock($1), pg_advisory_lock($2)", *LOCKS)
    try:
        yield conn
    finally:
        await conn.close()


LOCKS = (SWEEPER_LOCK_KEY, PAYMENT_CHECK_LOCK_KEY)


async def _reserve_due(servers: list[LiveServer], engine: AsyncEngine, count: int) -> list[str]:
    """`count` one-unit reservations made through the servers in turn, then made due."""
    made = []
    for i in range(count):
        payload = await reserve_on(servers[i % len(servers)], ("MUG", 1))
        assert payload["userErrors"] == [], payload
        made.append(payload["reservation"]["id"])
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE reservations SET expires_at = now() - interval '1 minute'"))
    return made


async def _statuses(engine: AsyncEngine, ids: list[str]) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id::text, status FROM reservations WHERE id::text = ANY(:ids)"),
            {"ids": ids},
        )
        return {r[0]: str(r[1]) for r in rows}


async def _expiry_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = await conn.execute(
            text("SELECT count(*) FROM stock_movements WHERE kind = 'EXPIRY'")
        )
        return int(count.scalar_one())


async def _all_expired(engine: AsyncEngine, ids: list[str]) -> bool:
    return set((await _statuses(engine, ids)).values()) == {"EXPIRED"}


async def test_two_processes_one_sweeper_and_one_payment_check_at_a_time(
    servers: ServerFactory,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    held_locks: asyncpg.Connection,
) -> None:
    """Two `serve` processes with the jobs every 0.1 s: while another holds the locks both
    skip every run (counted on each) and keep serving; once released, the due
    reservations are expired exactly once between them."""
    first = await servers.start(**BUSY_JOBS)
    second = await servers.start(**BUSY_JOBS)
    made = await _reserve_due([first, second], engine, 6)

    for server in (first, second):
        start = await server.metric(SWEEPS, SKIPPED)

        async def skipping(server: LiveServer = server, start: float = start) -> bool:
            sweeps = await server.metric(SWEEPS, SKIPPED)
            return sweeps >= start + 3 and await server.metric(CHECKS, SKIPPED) >= 1

        await eventually(skipping, what="both servers to skip the held locks")
        # ...and it still serves, its pool untouched by the jobs' waiting.
        assert (await reserve_on(server, ("SHIRT-S", 1)))["userErrors"] == []
    assert set((await _statuses(engine, made)).values()) == {"ACTIVE"}
    assert await _expiry_rows(engine) == 0

    await held_locks.execute("SELECT pg_advisory_unlock_all()")
    await eventually(lambda: _all_expired(engine, made), what="the sweep after the release")
    assert await _expiry_rows(engine) == len(made)  # one EXPIRY movement each, never two
    for server in (first, second):
        assert (await reserve_on(server, ("MUG", 1)))["userErrors"] == []
    await assert_invariants(sessions)


async def test_two_uvicorn_workers_share_the_database_and_one_sweeper(
    servers: ServerFactory,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    held_locks: asyncpg.Connection,
) -> None:
    """One server with ``--workers 2`` (uvicorn forks two app processes, each its own
    pool and jobs): requests are answered, the due reservations stay while the lock is
    held elsewhere and are expired exactly once after."""
    server = await servers.start("--workers", "2", **BUSY_JOBS)
    made = await _reserve_due([server], engine, 8)
    await eventually(lambda: _check_skipped(server), what="a worker's jobs to skip the held locks")
    assert set((await _statuses(engine, made)).values()) == {"ACTIVE"}
    await held_locks.execute("SELECT pg_advisory_unlock_all()")
    await eventually(lambda: _all_expired(engine, made), what="the sweep after the release")
    assert await _expiry_rows(engine) == len(made)
    await assert_invariants(sessions)


async def _check_skipped(server: LiveServer) -> bool:
    """Whichever worker answers /metrics has skipped a locked sweep."""
    return await server.metric(SWEEPS, SKIPPED) >= 2
