"""Catalog and stock types: Product, Variant, StockLevel, Location, Money, connections."""

from __future__ import annotations

from decimal import Decimal

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.loaders import LevelRow, LocationRow, ProductRow, VariantRow
from gql_inventory.money import to_decimal


@strawberry.type(name="Location")
class LocationType:
    """A warehouse or store holding stock."""

    id: strawberry.ID
    name: str
    is_default: bool = strawberry.field(description="Used when an operation names no location.")
    priority: int = strawberry.field(description="Reservations draw from lower values first.")

    @classmethod
    def from_row(cls, row: LocationRow) -> LocationType:
        """Build from a loader row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            is_default=row.is_default,
            priority=row.priority,
        )


async def load_location(info: Info[Context, None], location_id: int) -> LocationType:
    """The location with this id (it exists: foreign keys hold it)."""
    row = await info.context.loaders.location_by_id.load(location_id)
    if row is None:  # pragma: no cover - a foreign key makes this impossible
        raise LookupError(f"location {location_id} vanished")
    return LocationType.from_row(row)


@strawberry.type(name="StockLevel")
class StockLevelType:
    """Units of one variant at one location."""

    on_hand: int
    reserved: int
    available: int = strawberry.field(description="onHand - reserved")
    version: int = strawberry.field(description="Grows by one with each change to this level.")
    location_id: strawberry.Private[int]

    @strawberry.field
    async def location(self, info: Info[Context, None]) -> LocationType:
        """Where the units are."""
        return await load_location(info, self.location_id)

    @classmethod
    def from_row(cls, row: LevelRow) -> StockLevelType:
        """Build from a loader row."""
        return cls(
            on_hand=row.on_hand,
            reserved=row.reserved,
            available=row.available,
            version=row.version,
            location_id=row.location_id,
        )


@strawberry.type(name="VariantOption")
class VariantOptionType:
    """One option of a variant, e.g. Size: Medium."""

    name: str
    value: str


@strawberry.type(name="Money")
class MoneyType:
    """An amount in a currency (decimal, not minor units)."""

    amount: Decimal
    currency_code: str = strawberry.field(description="ISO 4217")

    @classmethod
    def from_minor(cls, minor_units: int, currency_code: str) -> MoneyType:
        """``1999, "USD"`` -> 19.99 USD."""
        return cls(amount=to_decimal(minor_units, currency_code), currency_code=currency_code)


@strawberry.type(name="Variant")
class VariantType:
    """A SKU: a product in one combination of options."""

    id: strawberry.ID
    sku: str
    title: str
    low_stock_threshold: int
    row: strawberry.Private[VariantRow]

    @classmethod
    def from_row(cls, row: VariantRow) -> VariantType:
        """Build from a loader row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            sku=row.sku,
            title=row.title,
            low_stock_threshold=row.low_stock_threshold,
            row=row,
        )

    @strawberry.field
    def options(self) -> list[VariantOptionType]:
        """Option name/value pairs in the product's option order."""
        return [VariantOptionType(name=o["name"], value=o["value"]) for o in self.row.options]

    @strawberry.field
    def price(self) -> MoneyType:
        """Unit price."""
        return MoneyType.from_minor(self.row.price_amount, self.row.currency_code)

    @strawberry.field
    async def product(self, info: Info[Context, None]) -> ProductType:
        """The product this variant belongs to."""
        row = await info.context.loaders.product_by_id.load(self.row.product_id)
        if row is None:  # pragma: no cover - a foreign key makes this impossible
            raise LookupError(f"product {self.row.product_id} vanished")
        return ProductType.from_row(row)

    async def _levels(self, info: Info[Context, None]) -> list[LevelRow]:
        return await info.context.loaders.levels_by_variant.load(self.row.id)

    @strawberry.field
    async def on_hand(self, info: Info[Context, None]) -> int:
        """Summed over locations."""
        return sum(level.on_hand for level in await self._levels(info))

    @strawberry.field
    async def reserved(self, info: Info[Context, None]) -> int:
        """Summed over locations."""
        return sum(level.reserved for level in await self._levels(info))

    @strawberry.field
    async def available(self, info: Info[Context, None]) -> int:
        """Summed over locations: onHand - reserved."""
        return sum(level.available for level in await self._levels(info))

    @strawberry.field
    async def is_low_stock(self, info: Info[Context, None]) -> bool:
        """available <= lowStockThreshold"""
        available = sum(level.available for level in await self._levels(info))
        return available <= self.row.low_stock_threshold

    @strawberry.field
    async def stock_levels(self, info: Info[Context, None]) -> list[StockLevelType]:
        """One per location holding this variant, by location priority."""
        return [StockLevelType.from_row(level) for level in await self._levels(info)]


@strawberry.type(name="Product")
class ProductType:
    """A product and its variants."""

    id: strawberry.ID
    handle: str
    title: str
    db_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ProductRow) -> ProductType:
        """Build from a loader row."""
        return cls(id=strawberry.ID(str(row.id)), handle=row.handle, title=row.title, db_id=row.id)

    @strawberry.field
    async def variants(self, info: Info[Context, None]) -> list[VariantType]:
        """Variants in the product's order."""
        rows = await info.context.loaders.variants_by_product.load(self.db_id)
        return [VariantType.from_row(r) for r in rows]

    @strawberry.field
    async def total_available(self, info: Info[Context, None]) -> int:
        """Available units over all variants and locations."""
        rows = await info.context.loaders.variants_by_product.load(self.db_id)
        levels = await info.context.loaders.levels_by_variant.load_many([r.id for r in rows])
        return sum(level.available for per_variant in levels for level in per_variant)


@strawberry.type(name="PageInfo")
class PageInfo:
    """Relay page info (GraphQL Cursor Connections spec)."""

    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(name="ProductEdge")
class ProductEdge:
    """A product with its cursor."""

    cursor: str
    node: ProductType


@strawberry.type(name="ProductConnection")
class ProductConnection:
    """A page of products."""

    edges: list[ProductEdge]
    page_info: PageInfo
