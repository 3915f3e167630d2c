"""Test fixtures: a real PostgreSQL (embedded, or TEST_DATABASE_URL), migrated once per run.

Each test starts from empty tables (TRUNCATE ... RESTART IDENTITY), so tests are
independent whatever their order.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.db import create_engine, make_sessionmaker, start_embedded_postgres, to_libpq_url
from gql_inventory.migrations import upgrade_database

ROOT = Path(__file__).resolve().parent.parent
SHARED_CSV_DIR = ROOT.parent / "shared" / "data" / "shopify-product-csvs"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


@pytest.fixture(scope="session")
def server_url() -> str:
    """libpq URL of the PostgreSQL server the tests use (any database on it)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return to_libpq_url(url)
    return start_embedded_postgres(ROOT / "var" / "test-pgdata")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database on the test server, migrated to head, dropped at the end."""
    name = f"gqlinv_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = _with_database(server_url, name)
    upgrade_database(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """One engine for the whole run (a pool big enough for the concurrency tests)."""
    eng = create_engine(database_url, pool_size=20, max_overflow=80)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The sessionmaker the service itself would use."""
    return make_sessionmaker(engine)


_TABLES = (
    "stock_movements, reservation_lines, order_allocations, order_lines, refunds, "
    "payment_events, webhook_events, idempotency_records, orders, reservations, "
    "stock_levels, variants, products, locations"
)


@pytest.fixture(autouse=True)
async def _clean_tables(request: pytest.FixtureRequest) -> None:
    """Empty every table before each test that touches the database."""
    if "engine" not in request.fixturenames and "sessions" not in request.fixturenames:
        return
    eng: AsyncEngine = request.getfixturevalue("engine")
    async with eng.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
