"""The cluster's database: a fresh one on the embedded PostgreSQL, migrated and seeded.

The demo catalog (`gql-inventory seed-demo`'s), then, through the domain
(`stock.adjust.set_stock`, so the ledger matches), the default location's level of each
SKU set: the first half to `BIG` units (the throughput runs never sell out), the second
half to the drill's `units` (its reserves meet sell-outs and refusals).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from gql_inventory.catalog.demo import seed_demo_catalog
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.db import (
    create_engine,
    make_sessionmaker,
    start_embedded_postgres,
    stop_embedded_postgres_if_unused,
)
from gql_inventory.migrations import upgrade_database
from gql_inventory.stock.adjust import AdjustmentReason, set_stock

#: Units of each throughput SKU.
BIG = 1_000_000


@dataclass(frozen=True)
class Catalog:
    """The database's name and its SKUs: `fast` for throughput, `drill` for the faults."""

    database: str
    fast: list[str]
    drill: list[str]


def start_postgres(data_dir: Path) -> str:
    """The embedded PostgreSQL in `data_dir` (started now, stopped when this process
    exits): its libpq URL."""
    return start_embedded_postgres(data_dir)


def stop_postgres(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL in `data_dir` unless another live process holds a handle
    on it (`stop_embedded_postgres_if_unused`: a drill killed earlier would otherwise keep
    it running for good)."""
    stop_embedded_postgres_if_unused(data_dir)


def _on(server: str, database: str) -> str:
    return urlsplit(server)._replace(path="/" + database).geturl()


async def create_database(server: str, *, units: int) -> Catalog:
    """A new database on `server`, migrated and seeded as the module says."""
    name = f"gqlinv_cluster_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = _on(server, name)
    await asyncio.to_thread(upgrade_database, url)
    engine = create_engine(url, pool_size=2, max_overflow=0)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions.begin() as session:
            await seed_demo_catalog(UnitOfWork(session, actor="import"))
        async with engine.connect() as conn_:
            found = await conn_.exec_driver_sql("SELECT sku FROM variants ORDER BY id")
            skus = [r[0] for r in found]
        half = len(skus) // 2
        async with sessions.begin() as session:
            uow = UnitOfWork(session, actor="import")
            for n, sku in enumerate(skus):
                await set_stock(
                    uow,
                    sku=sku,
                    location_id=None,
                    on_hand=BIG if n < half else units,
                    reason=AdjustmentReason.RECEIVED,
                )
    finally:
        await engine.dispose()
    return Catalog(database=name, fast=skus[:half], drill=skus[half:])


async def drop_database(server: str, name: str) -> None:
    """Drop database `name`, closing whatever is still connected to it."""
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
