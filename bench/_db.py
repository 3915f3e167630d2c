"""Databases of a benchmark run: one seeded template, a fresh copy of it per server.

The template is migrated to head (the project's migrations), holds the demo catalog
(`gql-inventory seed-demo`'s), and 1,000,000 units of every SKU at the default
location, set through the domain (`stock.adjust.set_stock`, so the ledger matches),
so no benchmark runs out of stock. Copies are `CREATE DATABASE ... TEMPLATE` (a file
copy: well under a second), so every server and the raw floor start from the same state.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from pydantic import SecretStr

from gql_inventory.catalog.demo import seed_demo_catalog
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.db import (
    create_engine,
    make_sessionmaker,
    start_embedded_postgres,
    to_libpq_url,
)
from gql_inventory.migrations import upgrade_database
from gql_inventory.stock.adjust import AdjustmentReason, set_stock

ROOT = Path(__file__).resolve().parent.parent
UNITS = 1_000_000


@dataclass(frozen=True)
class Level:
    """The default location's stock level of one SKU (ids as in the database)."""

    sku: str
    level_id: int
    variant_id: int
    location_id: int


def server_url() -> str:
    """libpq URL of the PostgreSQL server to use: `DATABASE_URL`'s, else the embedded one
    in var/bench-pgdata (started now; it stops when this process exits)."""
    given = os.environ.get("DATABASE_URL")
    return to_libpq_url(given) if given else start_embedded_postgres(ROOT / "var/bench-pgdata")


def database_url(server: str, name: str) -> str:
    """`server`'s URL pointing at database `name` instead."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _name(url: str) -> str:
    return urlsplit(url).path.strip("/")


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def make_template(server: str) -> str:
    """URL of a new database: migrated, demo catalog, `UNITS` of every SKU (see module)."""
    name = f"gqlinv_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(server, f'CREATE DATABASE "{name}"')
    url = database_url(server, name)
    await asyncio.to_thread(upgrade_database, url)
    engine = create_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions.begin() as session:
            await seed_demo_catalog(UnitOfWork(session, actor="import"))
        async with engine.connect() as conn:
            found = await conn.exec_driver_sql("SELECT sku FROM variants ORDER BY id")
            skus = [r[0] for r in found]
        async with sessions.begin() as session:
            uow = UnitOfWork(session, actor="import")
            for sku in skus:
                await set_stock(
                    uow, sku=sku, location_id=None, on_hand=UNITS, reason=AdjustmentReason.RECEIVED
                )
    finally:
        await engine.dispose()
    return url


async def fresh_database(prefix: str) -> tuple[str, str]:
    """``(server URL, URL of a new empty database migrated to head)`` named after `prefix`,
    on `server_url()`'s server (for benchmarks that seed their own catalog)."""
    server = server_url()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _admin(server, f'CREATE DATABASE "{name}"')
    url = database_url(server, name)
    await asyncio.to_thread(upgrade_database, url)
    return server, url


async def copy_database(server: str, template: str) -> str:
    """URL of a new database copied from `template` (no connection may be open on it)."""
    name = f"{_name(template)}_{uuid.uuid4().hex[:4]}"
    await _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{_name(template)}"')
    return database_url(server, name)


async def drop_database(server: str, url: str) -> None:
    """Drop `url`'s database, closing whatever is still connected to it."""
    await _admin(server, f'DROP DATABASE IF EXISTS "{_name(url)}" WITH (FORCE)')


async def levels(url: str) -> list[Level]:
    """Every SKU's default-location level, in variant id order (the demo catalog: ~23)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT v.sku, s.id AS level_id, v.id AS variant_id, s.location_id
                 FROM variants v
                 JOIN stock_levels s ON s.variant_id = v.id
                 JOIN locations l ON l.id = s.location_id AND l.is_default
                ORDER BY v.id"""
        )
    finally:
        await conn.close()
    return [Level(r["sku"], r["level_id"], r["variant_id"], r["location_id"]) for r in rows]


#: The bench's endpoint secrets key: the servers it starts get it too (WEBHOOK_SECRETS_KEY).
BENCH_SECRETS_KEY = "bVTBakIQdahn1Pn-2C5qUJUc8LWNdQhyKDDDXZeoiVM="


async def add_endpoints(
    url: str, count: int, topics: list[str], receiver: str | None = None
) -> None:
    """`count` enabled webhook endpoints subscribed to `topics` (issue 17's bench rows),
    posting to `receiver` (``http://127.0.0.1:<port>``; None: a discard address, for rows
    that measure only the write in the reserving transaction)."""
    from gql_inventory.outbound.secrets import new_secret, secret_box
    from gql_inventory.settings import Settings

    box = secret_box(Settings(webhook_secrets_key=SecretStr(BENCH_SECRETS_KEY)))
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO webhook_endpoints (id, url, topics, secret_ciphertext)"
            " VALUES (gen_random_uuid(), $1, $2::text[], $3)",
            [
                (
                    f"{receiver}/hooks/{n}" if receiver else f"https://receiver-{n}.invalid/hooks",
                    topics,
                    box.seal(new_secret()),
                )
                for n in range(count)
            ],
        )
    finally:
        await conn.close()


async def run_sql(url: str, sql: str) -> None:
    """Run `sql` on the database at `url` (an experiment's schema change, by hand)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def outbox_figures(url: str) -> dict[str, int]:
    """Webhook outbox rows by status (``{"PENDING": n, "SUCCEEDED": m, ...}``)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM outbox_messages WHERE channel = 'WEBHOOK'"
            " GROUP BY status"
        )
        return {r["status"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def server_version(server: str) -> str:
    """PostgreSQL's version string, e.g. ``PostgreSQL 15.20``."""
    conn = await asyncpg.connect(server)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    return f"PostgreSQL {version.split()[0]}"
