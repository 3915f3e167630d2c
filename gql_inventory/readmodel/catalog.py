"""An in-process snapshot of the catalog (products, variants, locations) for stock reads.

Loaded in one REPEATABLE READ transaction together with every stock level and the
`catalog_version` it reflects (migration 0006: triggers on the catalog tables set that
version in every transaction that writes them). A process keeps its snapshot while the
database's version equals the snapshot's, and loads a new one when it differs
(`gql_inventory.readmodel.reads.ReadModel`). Rows are the loaders' frozen rows
(`gql_inventory.domain.rows`), so the GraphQL types are built from them alike.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
from gql_inventory.models import Location, Product, Variant
from gql_inventory.stock.products import ProductPage

#: Sort key of a location not in the snapshot (created since): after every known one.
_UNKNOWN_PRIORITY = 2**31

_VERSION = text("SELECT coalesce((SELECT version FROM catalog_version WHERE id = 1), -1)")


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """The catalog as of `version` (a `catalog_version` value; -1: no row)."""

    version: int
    products: dict[int, ProductRow]
    products_by_handle: dict[str, ProductRow]
    variants: dict[int, VariantRow]
    variants_by_sku: dict[str, VariantRow]
    variants_by_product: dict[int, list[VariantRow]]
    locations: dict[int, LocationRow]
    locations_by_priority: list[LocationRow]
    product_ids: list[int] = field(default_factory=list)

    def location_order(self, location_id: int) -> tuple[int, int]:
        """Sort key of a location's levels: (priority, id); unknown locations last."""
        found = self.locations.get(location_id)
        return (found.priority if found else _UNKNOWN_PRIORITY, location_id)

    def product_page(self, *, first: int, after_id: int | None) -> ProductPage:
        """Up to `first` products with an id above `after_id`, by id (as `product_page`
        without a text or low-stock filter)."""
        start = 0 if after_id is None else bisect.bisect_right(self.product_ids, after_id)
        ids = self.product_ids[start : start + first + 1]
        rows = [self.products[i] for i in ids]
        return ProductPage(products=rows[:first], has_next_page=len(rows) > first)


async def catalog_version(conn: AsyncConnection) -> int:
    """The database's current `catalog_version` (-1 when its row is missing)."""
    return int((await conn.execute(_VERSION)).scalar_one())


async def load_snapshot(engine: AsyncEngine) -> tuple[CatalogSnapshot, list[LevelRow]]:
    """The catalog and every stock level, read in one consistent snapshot.

    Five queries in one read-only REPEATABLE READ transaction; memory is about
    0.5 KiB per variant and 0.1 KiB per level. Raises what the driver raises when
    the database is unreachable.
    """
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            version = await catalog_version(conn)
            products = [
                product_row(r._mapping)
                for r in await conn.execute(select(*PRODUCT_COLUMNS).order_by(Product.id))
            ]
            variants = [
                variant_row(r._mapping)
                for r in await conn.execute(
                    select(*VARIANT_COLUMNS).order_by(
                        Variant.product_id, Variant.position, Variant.id
                    )
                )
            ]
            locations = [
                location_row(r._mapping)
                for r in await conn.execute(
                    select(*LOCATION_COLUMNS).order_by(Location.priority, Location.id)
                )
            ]
            levels = [level_row(r._mapping) for r in await conn.execute(select(*LEVEL_COLUMNS))]
    by_product: dict[int, list[VariantRow]] = defaultdict(list)
    for variant in variants:
        by_product[variant.product_id].append(variant)
    snapshot = CatalogSnapshot(
        version=version,
        products={p.id: p for p in products},
        products_by_handle={p.handle: p for p in products},
        variants={v.id: v for v in variants},
        variants_by_sku={v.sku: v for v in variants},
        variants_by_product=dict(by_product),
        locations={loc.id: loc for loc in locations},
        locations_by_priority=locations,
        product_ids=[p.id for p in products],
    )
    return snapshot, levels
