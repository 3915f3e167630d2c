"""Test fixtures: a real PostgreSQL (embedded, or TEST_DATABASE_URL), migrated once per run.

Each test starts from empty tables (TRUNCATE ... RESTART IDENTITY), so tests are
independent whatever their order.
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.app import create_app
from gql_inventory.kit.db import (
    create_engine,
    make_sessionmaker,
    start_embedded_postgres,
    stop_embedded_postgres_if_unused,
    to_libpq_url,
)
from gql_inventory.migrations import upgrade_database
from gql_inventory.settings import Settings

#: Shared fixtures (catalog, servers, fake_stripe, provider, secret): tests/support/fixtures.py.
pytest_plugins = ("tests.support.fixtures",)

ROOT = Path(__file__).resolve().parent.parent
SHARED_CSV_DIR = ROOT.parent / "shared" / "data" / "shopify-product-csvs"


class GraphQLCaller(Protocol):
    """The `gql` fixture: ``await gql(query, variables, admin=False) -> response body``."""

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, admin: bool = False
    ) -> dict[str, Any]: ...


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


#: Connections the embedded test server allows: each pytest-xdist worker's engine may open
#: up to 100 at once in the concurrency tests, next to live servers' pools.
TEST_MAX_CONNECTIONS = 400


def _ensure_max_connections(url: str, data_dir: Path) -> None:
    """Raise the embedded server's `max_connections` once (ALTER SYSTEM, then restart)."""
    from embedded_postgres._commands import pg_ctl

    async def current() -> int:
        conn = await asyncpg.connect(url)
        try:
            value = int(await conn.fetchval("SHOW max_connections"))
            if value < TEST_MAX_CONNECTIONS:
                await conn.execute(f"ALTER SYSTEM SET max_connections = {TEST_MAX_CONNECTIONS}")
            return value
        finally:
            await conn.close()

    if asyncio.run(current()) < TEST_MAX_CONNECTIONS:
        # pg_ctl restart reuses the options the server was started with (postmaster.opts).
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "restart"], pgdata=data_dir, user=user, timeout=30)
        # embedded-postgres stops the server at exit through the postmaster process it
        # started, which the restart replaced: this process must stop it itself when it
        # is the last one using it (registered after its handler, so it runs first).
        atexit.register(stop_embedded_postgres_if_unused, data_dir)


@pytest.fixture(scope="session")
def server_url() -> str:
    """libpq URL of the PostgreSQL server the tests use (any database on it)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return to_libpq_url(url)
    data_dir = ROOT / "var" / "test-pgdata"
    data_dir.parent.mkdir(exist_ok=True)
    # One worker at a time starts the server and, the first time, raises its limit.
    with (ROOT / "var" / ".test-server.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        url = start_embedded_postgres(data_dir)
        _ensure_max_connections(url, data_dir.resolve())
    return url


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
    "stock_levels, variants, products, locations, outbox_messages, webhook_endpoints, job_runs"
)


@pytest.fixture(autouse=True)
async def _clean_tables(request: pytest.FixtureRequest) -> None:
    """Empty every table before each test that touches the database."""
    if "engine" not in request.fixturenames and "sessions" not in request.fixturenames:
        return
    eng: AsyncEngine = request.getfixturevalue("engine")
    async with eng.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the app under test (admin token `admin-secret`)."""
    return Settings(admin_tokens=["admin-secret"], graphiql=True)


@pytest.fixture(scope="session")
async def app(settings: Settings, database_url: str) -> AsyncIterator[Starlette]:
    """The ASGI app on the test database."""
    application = create_app(settings, database_url=database_url)
    yield application
    await application.state.services.close()


@pytest.fixture
async def client(app: Starlette, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to the app in-process (depends on `engine` for clean tables)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLCaller:
    """Post a GraphQL operation; returns the whole response body (data and errors)."""

    async def call(
        query: str, variables: dict[str, Any] | None = None, *, admin: bool = False
    ) -> dict[str, Any]:
        headers = {"Authorization": "Bearer admin-secret"} if admin else {}
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return call
