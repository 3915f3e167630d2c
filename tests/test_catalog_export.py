"""Stock CSV export after an import and the demo seeding."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.catalog import export_stock_csv, import_shopify_files, seed_demo_catalog
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.test_catalog_import import MULTI_OPTION_CSV

Sessions = async_sessionmaker[AsyncSession]


async def test_export_matches_database(sessions: Sessions) -> None:
    async with sessions.begin() as s:
        await import_shopify_files(UnitOfWork(s, actor="system"), [MULTI_OPTION_CSV])
        await seed_demo_catalog(UnitOfWork(s, actor="system"))
    async with sessions.begin() as s:
        level_id = (
            await s.execute(
                text(
                    "SELECT l.id FROM stock_levels l JOIN variants v ON v.id = l.variant_id "
                    "WHERE v.sku = 'CT-BLK-S'"
                )
            )
        ).scalar_one()
        await apply_movement(
            UnitOfWork(s, actor="system"),
            level_id=level_id,
            kind=MovementKind.RESERVATION,
            reserved_delta=3,
        )

    out = io.StringIO()
    async with sessions.begin() as s:
        written = await export_stock_csv(s, out)
        db_rows = [
            (sku, name, str(on_hand), str(reserved), str(on_hand - reserved))
            for sku, name, on_hand, reserved in await s.execute(
                text(
                    "SELECT v.sku, o.name, l.on_hand, l.reserved FROM stock_levels l "
                    "JOIN variants v ON v.id = l.variant_id "
                    "JOIN locations o ON o.id = l.location_id ORDER BY v.sku, o.name"
                )
            )
        ]

    content = out.getvalue()
    assert "\r" not in content
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0] == ["sku", "location", "on_hand", "reserved", "available"]
    data = [tuple(r) for r in rows[1:]]
    assert written == len(data) == 8 + 44 * 3
    assert data == db_rows
    assert ("CT-BLK-S", "Main warehouse", "10", "3", "7") in data
    # Grouped by SKU, locations in name order within each SKU.
    skus = [r[0] for r in data]
    for sku in set(skus):
        names = [r[1] for r in data if r[0] == sku]
        assert names == sorted(names)
        first = skus.index(sku)
        assert skus[first : first + len(names)] == [sku] * len(names)


async def test_export_of_empty_database(sessions: Sessions) -> None:
    out = io.StringIO()
    async with sessions.begin() as s:
        assert await export_stock_csv(s, out) == 0
    assert out.getvalue() == "sku,location,on_hand,reserved,available\n"
