"""Stock export: one CSV row per stock level."""

from __future__ import annotations

import csv
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.kit.csvcells import guard_cell
from gql_inventory.models import Location, StockLevel, Variant
from gql_inventory.stock.levels import available_units

__all__ = ["EXPORT_HEADER", "export_stock_csv"]

EXPORT_HEADER = ("sku", "location", "on_hand", "reserved", "available")


async def export_stock_csv(session: AsyncSession, out: TextIO) -> int:
    """Write every stock level to `out` as CSV; return the number of data rows.

    Header ``sku,location,on_hand,reserved,available`` (units; available = on_hand -
    reserved - unavailable, ADR 0017), then one row per level ordered by SKU, then
    location name. Lines end with ``\\n``; open a file with ``newline=""`` to keep them so.
    A SKU or location name that starts like a spreadsheet formula is written with a
    quote in front (`kit.csvcells.guard_cell`).
    Reads in one statement (a consistent snapshot) and streams the rows.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    stmt = (
        select(
            Variant.sku,
            Location.name,
            StockLevel.on_hand,
            StockLevel.reserved,
            available_units().label("available"),
        )
        .join(Variant, Variant.id == StockLevel.variant_id)
        .join(Location, Location.id == StockLevel.location_id)
        .order_by(Variant.sku, Location.name)
    )
    count = 0
    result = await session.stream(stmt)
    async for sku, location, on_hand, reserved, available in result:
        writer.writerow((guard_cell(sku), guard_cell(location), on_hand, reserved, available))
        count += 1
    return count
