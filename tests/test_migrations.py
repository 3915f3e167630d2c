"""Migrations up and down on an empty database, and up again."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gql_inventory.migrations import downgrade_database, upgrade_database


def _tables(url: str) -> set[str]:
    async def fetch() -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {r["tablename"] for r in rows}
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _admin(server_url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def test_upgrade_downgrade_upgrade(server_url: str) -> None:
    name = f"gqlinv_mig_{uuid.uuid4().hex[:8]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    try:
        upgrade_database(url)
        tables = _tables(url)
        assert {"stock_levels", "stock_movements", "reservations", "orders"} <= tables
        downgrade_database(url, "base")
        assert _tables(url) <= {"alembic_version"}
        upgrade_database(url)
        assert _tables(url) == tables
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
