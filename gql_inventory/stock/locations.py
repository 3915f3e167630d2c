"""Location reads."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.domain.rows import LOCATION_COLUMNS, LocationRow, location_row
from gql_inventory.models import Location


async def locations_by_priority(conn: AsyncConnection) -> list[LocationRow]:
    """Every location, lowest `priority` first (ties: lowest id): the order reservations
    draw stock from."""
    rows = await conn.execute(select(*LOCATION_COLUMNS).order_by(Location.priority, Location.id))
    return [location_row(r._mapping) for r in rows]
