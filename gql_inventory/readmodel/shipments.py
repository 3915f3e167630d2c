"""Per-request loaders of inbound shipments and of what they still expect (`incoming`,
`nextIncomingAt`): always SQL (`stock.shipment_reads`), never the in-memory projection,
so every read is reported to the request's trace and a response holding them is never
kept by the response cache (`gql_inventory.response_cache`): it cannot go stale when
a shipment is created, received or cancelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import TypeVar

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from strawberry.dataloader import DataLoader

from gql_inventory.response_cache.trace import ReadTrace
from gql_inventory.stock.shipment_reads import (
    Incoming,
    incoming_by_variant,
    shipment_lines,
    shipments_by_id,
)

K = TypeVar("K")
V = TypeVar("V")


class ShipmentLoaders:
    """Shipments by id, their lines, and each variant's `Incoming`, batched per request;
    reads are reported to `trace` (as `readmodel.loaders.Loaders` does)."""

    def __init__(self, engine: AsyncEngine, trace: ReadTrace | None = None) -> None:
        self._engine = engine
        self._trace = trace

    def _loader(
        self, read: Callable[[AsyncConnection, Sequence[K]], Awaitable[list[V]]]
    ) -> DataLoader[K, V]:
        async def batch(keys: Sequence[K]) -> list[V]:
            if self._trace is not None:
                self._trace.note_database_read()
            async with self._engine.connect() as conn:
                return await read(conn, keys)

        return DataLoader[K, V](batch)

    @cached_property
    def shipment_by_id(self) -> DataLoader[uuid.UUID, RowMapping | None]:
        """`inbound_shipments` rows by id (None: no such shipment)."""
        return self._loader(shipments_by_id)

    @cached_property
    def lines(self) -> DataLoader[uuid.UUID, list[RowMapping]]:
        """A shipment's lines in their created order."""
        return self._loader(shipment_lines)

    @cached_property
    def incoming(self) -> DataLoader[int, Incoming]:
        """Per variant id: units still expected per location, and the earliest date."""
        return self._loader(incoming_by_variant)
