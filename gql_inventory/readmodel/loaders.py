"""Per-request loaders: answers from the process's read model when it may be trusted,
else batched Core reads (one query per batch, whatever the page size).

The read model (`gql_inventory.readmodel.reads`: the stock projection and the catalog
snapshot, kept current by live events) answers without touching the database; what it
cannot answer (live events off or not in sync, a row created since the snapshot) goes
to a DataLoader made on first use, and marks the request's read trace (so its response
is not cached: `gql_inventory.response_cache`). Each batch runs on its own pooled connection
(reads only), so loaders that fire in the same tick may run concurrently. Rows come
back as small frozen dataclasses (`gql_inventory.domain.rows`); GraphQL types are
built from them in `gql_inventory.schema`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from strawberry.dataloader import DataLoader

from gql_inventory.domain.rows import (
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
    Product,
    ReservationLine,
    StockLevel,
    Variant,
)
from gql_inventory.readmodel.lookup import MISS, Lookup, Miss
from gql_inventory.readmodel.order_loaders import OrderLoaders
from gql_inventory.readmodel.shipments import ShipmentLoaders
from gql_inventory.response_cache.trace import ReadTrace
from gql_inventory.stock.locations import locations_by_priority
from gql_inventory.stock.products import ProductPage, product_by_handle, product_page

if TYPE_CHECKING:
    from gql_inventory.readmodel.catalog import CatalogSnapshot
    from gql_inventory.readmodel.reads import ReadModel
    from gql_inventory.services import Services

__all__ = [
    "LEVEL_COLUMNS",
    "LOCATION_COLUMNS",
    "MISS",
    "PRODUCT_COLUMNS",
    "VARIANT_COLUMNS",
    "LevelRow",
    "Loaders",
    "LocationRow",
    "Lookup",
    "OrderLoaders",
    "ProductRow",
    "VariantRow",
    "level_row",
    "location_row",
    "product_row",
    "variant_row",
]


class Loaders:
    """The loaders of one request (`Loaders.of(services)`; caches are per request).

    `reads` is the process's read model (None: live events off, every read queries
    the database); `trace` is the request's read trace (`response_cache.trace`; None:
    not traced), told of every read that goes to SQL. Each loader is built when a
    resolver first uses it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        reads: ReadModel | None = None,
        trace: ReadTrace | None = None,
    ) -> None:
        self._engine = engine
        self._reads = reads
        self._trace = trace

    @classmethod
    def of(cls, services: Services, trace: ReadTrace | None = None) -> Loaders:
        """The loaders of one request served by `services`, reporting to `trace`."""
        live = services.live
        return cls(services.engine, live.reads if live is not None else None, trace)

    def _note_database_read(self) -> None:
        if self._trace is not None:
            self._trace.note_database_read()

    # ------------------------------------------------------------ read-model answers

    def _catalog(self) -> CatalogSnapshot | None:
        return self._reads.catalog() if self._reads is not None else None

    def _fast_product(self, product_id: int) -> ProductRow | Miss | None:
        snapshot = self._catalog()
        found = snapshot.products.get(product_id) if snapshot is not None else None
        return MISS if found is None else found

    def _fast_variant(self, variant_id: int) -> VariantRow | Miss | None:
        snapshot = self._catalog()
        found = snapshot.variants.get(variant_id) if snapshot is not None else None
        return MISS if found is None else found

    def _fast_sku(self, sku: str) -> VariantRow | Miss | None:
        snapshot = self._catalog()
        found = snapshot.variants_by_sku.get(sku) if snapshot is not None else None
        return MISS if found is None else found

    def _fast_product_variants(self, product_id: int) -> list[VariantRow] | Miss:
        snapshot = self._catalog()
        if snapshot is None or product_id not in snapshot.products:
            return MISS
        return snapshot.variants_by_product.get(product_id, [])

    def _fast_location(self, location_id: int) -> LocationRow | Miss | None:
        snapshot = self._catalog()
        found = snapshot.locations.get(location_id) if snapshot is not None else None
        return MISS if found is None else found

    def _fast_levels(self, variant_id: int) -> list[LevelRow] | Miss:
        stock = self._reads.stock() if self._reads is not None else None
        if stock is None:
            return MISS
        if self._trace is not None:
            self._trace.note_stock_read(variant_id)
        return stock.levels_of(variant_id)

    def _fast_level(self, level_id: int) -> LevelRow | Miss | None:
        stock = self._reads.stock() if self._reads is not None else None
        found = stock.level(level_id) if stock is not None else None
        if found is None:
            return MISS
        if self._trace is not None:
            self._trace.note_stock_read(found.variant_id)
        return found

    # ------------------------------------------------------------ loaders

    @cached_property
    def product_by_id(self) -> Lookup[int, ProductRow | None]:
        """Products by id (None: no such product)."""
        return Lookup(self._products_by_id, self._fast_product)

    @cached_property
    def variant_by_id(self) -> Lookup[int, VariantRow | None]:
        """Variants by id."""
        return Lookup(self._variants_by_id, self._fast_variant)

    @cached_property
    def variant_by_sku(self) -> Lookup[str, VariantRow | None]:
        """Variants by SKU."""
        return Lookup(self._variants_by_sku, self._fast_sku)

    @cached_property
    def variants_by_product(self) -> Lookup[int, list[VariantRow]]:
        """A product's variants in the product's order."""
        return Lookup(self._variants_by_product, self._fast_product_variants)

    @cached_property
    def location_by_id(self) -> Lookup[int, LocationRow | None]:
        """Locations by id."""
        return Lookup(self._locations_by_id, self._fast_location)

    @cached_property
    def levels_by_variant(self) -> Lookup[int, list[LevelRow]]:
        """A variant's stock levels by location priority (from the projection when trusted)."""
        return Lookup(self._levels_by_variant, self._fast_levels)

    @cached_property
    def level_by_id(self) -> Lookup[int, LevelRow | None]:
        """Stock levels by id (from the projection when trusted)."""
        return Lookup(self._levels_by_id, self._fast_level)

    @cached_property
    def reservation_lines(self) -> DataLoader[Any, list[tuple[int, int, int]]]:
        """Per reservation id: ``[(variant_id, quantity summed over locations), ...]``."""
        return DataLoader[Any, list[tuple[int, int, int]]](self._reservation_lines)

    @cached_property
    def orders(self) -> OrderLoaders:
        """Reservations, orders and their lines."""
        return OrderLoaders(self._engine, self._trace)

    @cached_property
    def shipments(self) -> ShipmentLoaders:
        """Inbound shipments, their lines, and what they still expect per variant."""
        return ShipmentLoaders(self._engine, self._trace)

    # ------------------------------------------------------------ catalog reads

    async def product_page(
        self,
        *,
        first: int,
        after_id: int | None,
        query: str | None,
        low_stock_only: bool,
        in_stock_only: bool = False,
    ) -> ProductPage:
        """A page of products by id (`stock.products.product_page`); from the catalog
        snapshot when there is no filter and it may be trusted."""
        filtered = bool(query) or low_stock_only or in_stock_only
        snapshot = None if filtered else self._catalog()
        if snapshot is not None:
            return snapshot.product_page(first=first, after_id=after_id)
        self._note_database_read()
        async with self._engine.connect() as conn:
            return await product_page(
                conn,
                first=first,
                after_id=after_id,
                query=query,
                low_stock_only=low_stock_only,
                in_stock_only=in_stock_only,
            )

    async def product_by_handle(self, handle: str) -> ProductRow | None:
        """The product with this exact handle, or None."""
        snapshot = self._catalog()
        found = snapshot.products_by_handle.get(handle) if snapshot is not None else None
        if found is not None:
            return found
        self._note_database_read()
        async with self._engine.connect() as conn:
            return await product_by_handle(conn, handle)

    async def locations(self) -> list[LocationRow]:
        """Every location, lowest priority first (ties: lowest id)."""
        snapshot = self._catalog()
        if snapshot is not None:
            return list(snapshot.locations_by_priority)
        self._note_database_read()
        async with self._engine.connect() as conn:
            return await locations_by_priority(conn)

    # ------------------------------------------------------------ batches (SQL)

    async def _rows(self, stmt: Executable) -> Sequence[Any]:
        self._note_database_read()
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

    async def _reservation_lines(self, ids: Sequence[Any]) -> list[list[tuple[int, int, int]]]:
        """Per reservation id: ``[(variant_id, quantity, of which backordered), ...]``, units
        summed over locations."""
        rows = await self._rows(
            select(
                ReservationLine.reservation_id,
                ReservationLine.variant_id,
                ReservationLine.quantity,
                ReservationLine.backordered_quantity,
            )
            .where(ReservationLine.reservation_id.in_(ids))
            .order_by(ReservationLine.reservation_id, ReservationLine.id)
        )
        grouped: dict[Any, dict[int, tuple[int, int]]] = defaultdict(dict)
        for r in rows:
            per = grouped[r["reservation_id"]]
            quantity, backordered = per.get(r["variant_id"], (0, 0))
            per[r["variant_id"]] = (
                quantity + r["quantity"],
                backordered + r["backordered_quantity"],
            )
        return [[(v, q, b) for v, (q, b) in grouped[i].items()] for i in ids]
