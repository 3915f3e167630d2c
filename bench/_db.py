"""A fresh, migrated database for a benchmark run (shared by the benchmarks)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gql_inventory.db import start_embedded_postgres, to_libpq_url
from gql_inventory.migrations import upgrade_database

ROOT = Path(__file__).resolve().parent.parent


async def fresh_database(prefix: str) -> tuple[str, str]:
    """``(server URL, URL of a new database migrated to head)`` on `DATABASE_URL`'s server,
    else on the embedded PostgreSQL in var/bench-pgdata."""
    server = os.environ.get("DATABASE_URL")
    server = to_libpq_url(server) if server else start_embedded_postgres(ROOT / "var/bench-pgdata")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(server)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    await asyncio.to_thread(upgrade_database, url)
    return server, url
