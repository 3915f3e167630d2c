"""Per-request DataLoaders: batched Core reads, one query per batch, whatever the page size.

Each batch runs on its own pooled connection (reads only), so loaders that fire
in the same tick may run concurrently. Rows come back as small frozen
dataclasses (`gql_inventory.inventory.rows`); GraphQL types are
built from them in `gql_inventory.schema`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from strawberry.dataloader import DataLoader

from gql_inventory.inventory.rows import (
    LEVEL_COLUMNS,
    LOCATION_COLUMNS,
    PRODUCT_COLUMNS,
    VARIANT_COLUMNS,
    LevelRow,
    LocationRow,
    ProductRow,
    VariantRow,
    level_row,
    location_row,
    product_row,
    variant_row,
)
from gql_inventory.models import (
    Location,
    Order,
    OrderLine,
    PaymentEvent,
    Product,
    Reservation,
    ReservationLine,
    StockLevel,
    Variant,
)

__all__ = [
    "LEVEL_COLUMNS",
    "LOCATION_COLUMNS",
    "PRODUCT_COLUMNS",
    "VARIANT_COLUMNS",
    "LevelRow",
    "Loaders",
    "LocationRow",
    "OrderLoaders",
    "ProductRow",
    "VariantRow",
    "level_row",
    "location_row",
    "product_row",
    "variant_row",
]


class Loaders:
    """The DataLoaders of one request. Build a new one per request (caches are per request).

    Each loader is made on first use: a websocket connection keeps its context (and this)
    for its whole life, and most use none of them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @cached_property
    def product_by_id(self) -> DataLoader[int, ProductRow | None]:
        """The `product_by_id` loader (made on first use)."""
        return DataLoader[int, ProductRow | None](self._products_by_id)

    @cached_property
    def variant_by_id(self) -> DataLoader[int, VariantRow | None]:
        """The `variant_by_id` loader (made on first use)."""
        return DataLoader[int, VariantRow | None](self._variants_by_id)

    @cached_property
    def variant_by_sku(self) -> DataLoader[str, VariantRow | None]:
        """The `variant_by_sku` loader (made on first use)."""
        return DataLoader[str, VariantRow | None](self._variants_by_sku)

    @cached_property
    def variants_by_product(self) -> DataLoader[int, list[VariantRow]]:
        """The `variants_by_product` loader (made on first use)."""
        return DataLoader[int, list[VariantRow]](self._variants_by_product)

    @cached_property
    def location_by_id(self) -> DataLoader[int, LocationRow | None]:
        """The `location_by_id` loader (made on first use)."""
        return DataLoader[int, LocationRow | None](self._locations_by_id)

    @cached_property
    def levels_by_variant(self) -> DataLoader[int, list[LevelRow]]:
        """The `levels_by_variant` loader (made on first use)."""
        return DataLoader[int, list[LevelRow]](self._levels_by_variant)

    @cached_property
    def level_by_id(self) -> DataLoader[int, LevelRow | None]:
        """The `level_by_id` loader (made on first use)."""
        return DataLoader[int, LevelRow | None](self._levels_by_id)

    @cached_property
    def reservation_lines(self) -> DataLoader[Any, list[tuple[int, int]]]:
        """The `reservation_lines` loader (made on first use)."""
        return DataLoader[Any, list[tuple[int, int]]](self._reservation_lines)

    @cached_property
    def orders(self) -> OrderLoaders:
        """The `orders` loader (made on first use)."""
        return OrderLoaders(self._engine)

    async def _rows(self, stmt: Executable) -> Sequence[Any]:
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt)
            return [r._mapping for r in result]

    async def _products_by_id(self, ids: Sequence[int]) -> list[ProductRow | None]:
        rows = await self._rows(select(*PRODUCT_COLUMNS).where(Product.id.in_(ids)))
        found = {r["id"]: product_row(r) for r in rows}
        return [found.get(i) for i in ids]

    async def _variants_by_id(self, ids: Sequence[int]) -> list[VariantRow | None]:
        rows = await self._rows(select(*VARIANT_COLUMNS).where(Variant.id.in_(ids)))
        found = {r["id"]: variant_row(r) for r in rows}
        return [found.get(i) for i in ids]

    async def _variants_by_sku(self, skus: Sequence[str]) -> list[VariantRow | None]:
        rows = await self._rows(select(*VARIANT_COLUMNS).where(Variant.sku.in_(skus)))
        found = {r["sku"]: variant_row(r) for r in rows}
        for row in found.values():
            self.variant_by_id.prime(row.id, row)
        return [found.get(s) for s in skus]

    async def _variants_by_product(self, ids: Sequence[int]) -> list[list[VariantRow]]:
        rows = await self._rows(
            select(*VARIANT_COLUMNS)
            .where(Variant.product_id.in_(ids))
            .order_by(Variant.product_id, Variant.position, Variant.id)
        )
        grouped: dict[int, list[VariantRow]] = defaultdict(list)
        for r in rows:
            row = variant_row(r)
            grouped[row.product_id].append(row)
            self.variant_by_id.prime(row.id, row)
        return [grouped[i] for i in ids]

    async def _locations_by_id(self, ids: Sequence[int]) -> list[LocationRow | None]:
        rows = await self._rows(select(*LOCATION_COLUMNS).where(Location.id.in_(ids)))
        found = {r["id"]: location_row(r) for r in rows}
        return [found.get(i) for i in ids]

    async def _levels_by_variant(self, ids: Sequence[int]) -> list[list[LevelRow]]:
        rows = await self._rows(
            select(*LEVEL_COLUMNS)
            .join(Location, Location.id == StockLevel.location_id)
            .where(StockLevel.variant_id.in_(ids))
            .order_by(StockLevel.variant_id, Location.priority, Location.id)
        )
        grouped: dict[int, list[LevelRow]] = defaultdict(list)
        for r in rows:
            row = level_row(r)
            grouped[row.variant_id].append(row)
        return [grouped[i] for i in ids]

    async def _levels_by_id(self, ids: Sequence[int]) -> list[LevelRow | None]:
        rows = await self._rows(select(*LEVEL_COLUMNS).where(StockLevel.id.in_(ids)))
        found = {r["id"]: level_row(r) for r in rows}
        return [found.get(i) for i in ids]

    async def _reservation_lines(self, ids: Sequence[Any]) -> list[list[tuple[int, int]]]:
        """Per reservation id: ``[(variant_id, quantity summed over locations), ...]``."""
        rows = await self._rows(
            select(
                ReservationLine.reservation_id,
                ReservationLine.variant_id,
                ReservationLine.quantity,
            )
            .where(ReservationLine.reservation_id.in_(ids))
            .order_by(ReservationLine.reservation_id, ReservationLine.id)
        )
        grouped: dict[Any, dict[int, int]] = defaultdict(dict)
        for r in rows:
            per = grouped[r["reservation_id"]]
            per[r["variant_id"]] = per.get(r["variant_id"], 0) + r["quantity"]
        return [list(grouped[i].items()) for i in ids]


class OrderLoaders:
    """Per-request loaders for reservations, orders and their lines (rows as mappings)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

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
        rows = await self._rows(
            select(OrderLine.__table__).where(OrderLine.order_id.in_(ids)).order_by(OrderLine.id)
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
