"""A per-process cache of locations, for the `location` field of stock events."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.domain.rows import LOCATION_COLUMNS, LocationRow, location_row
from gql_inventory.models import Location


class LocationCache:
    """Every location, read at once and re-read when older than `ttl_seconds`."""

    def __init__(self, engine: AsyncEngine, ttl_seconds: float) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self._locations: dict[int, LocationRow] = {}
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, location_id: int) -> LocationRow:
        """A location by id (one query for all of them when the cache is stale)."""
        row = self._locations.get(location_id)
        fresh = time.monotonic() - self._read_at < self.ttl_seconds
        if row is not None and fresh:
            return row
        async with self._lock:
            row = self._locations.get(location_id)
            fresh = time.monotonic() - self._read_at < self.ttl_seconds
            if row is None or not fresh:
                async with self.engine.connect() as conn:
                    rows = await conn.execute(select(*LOCATION_COLUMNS).order_by(Location.id))
                    self._locations = {r.id: location_row(r._mapping) for r in rows}
                self._read_at = time.monotonic()
                row = self._locations.get(location_id)
        if row is None:  # pragma: no cover - a foreign key makes this impossible
            raise LookupError(f"location {location_id} vanished")
        return row
