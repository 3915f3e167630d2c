"""Per-request loaders of reservations, orders, their lines and payment events: batched
Core reads (one query per batch), rows as mappings; `Loaders.orders` gives them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from strawberry.dataloader import DataLoader

from gql_inventory.models import Order, OrderAllocation, OrderLine, PaymentEvent, Reservation
from gql_inventory.response_cache.trace import ReadTrace


class OrderLoaders:
    """Per-request loaders for reservations, orders and their lines (rows as mappings);
    reads are reported to the request's `trace` (as `Loaders`)."""

    def __init__(self, engine: AsyncEngine, trace: ReadTrace | None = None) -> None:
        self._engine = engine
        self._trace = trace

    @cached_property
    def reservation_by_id(self) -> DataLoader[Any, RowMapping | None]:
        """The `reservation_by_id` loader (made on first use)."""
        return DataLoader[Any, RowMapping | None](self._reservations)

    @cached_property
    def order_by_id(self) -> DataLoader[Any, RowMapping | None]:
        """The `order_by_id` loader (made on first use)."""
        return DataLoader[Any, RowMapping | None](self._orders)

    @cached_property
    def order_lines(self) -> DataLoader[Any, list[RowMapping]]:
        """The `order_lines` loader (made on first use)."""
        return DataLoader[Any, list[RowMapping]](self._order_lines)

    @cached_property
    def payment_events(self) -> DataLoader[Any, list[RowMapping]]:
        """The `payment_events` loader (made on first use)."""
        return DataLoader[Any, list[RowMapping]](self._payment_events)

    async def _rows(self, stmt: Executable) -> list[RowMapping]:
        if self._trace is not None:
            self._trace.note_database_read()
        async with self._engine.connect() as conn:
            return [r._mapping for r in await conn.execute(stmt)]

    async def _reservations(self, ids: Sequence[Any]) -> list[RowMapping | None]:
        rows = await self._rows(select(Reservation.__table__).where(Reservation.id.in_(ids)))
        found = {r["id"]: r for r in rows}
        return [found.get(i) for i in ids]

    async def _orders(self, ids: Sequence[Any]) -> list[RowMapping | None]:
        rows = await self._rows(select(Order.__table__).where(Order.id.in_(ids)))
        found = {r["id"]: r for r in rows}
        return [found.get(i) for i in ids]

    async def _order_lines(self, ids: Sequence[Any]) -> list[list[RowMapping]]:
        waiting = (
            select(func.coalesce(func.sum(OrderAllocation.backordered_quantity), 0))
            .where(OrderAllocation.order_line_id == OrderLine.id)
            .scalar_subquery()
        )
        rows = await self._rows(
            select(OrderLine.__table__, waiting.label("backordered_quantity"))
            .where(OrderLine.order_id.in_(ids))
            .order_by(OrderLine.id)
        )
        grouped: dict[Any, list[RowMapping]] = defaultdict(list)
        for r in rows:
            grouped[r["order_id"]].append(r)
        return [grouped[i] for i in ids]

    async def _payment_events(self, ids: Sequence[Any]) -> list[list[RowMapping]]:
        rows = await self._rows(
            select(PaymentEvent.__table__)
            .where(PaymentEvent.order_id.in_(ids))
            .order_by(PaymentEvent.id)
        )
        grouped: dict[Any, list[RowMapping]] = defaultdict(list)
        for r in rows:
            grouped[r["order_id"]].append(r)
        return [grouped[i] for i in ids]
