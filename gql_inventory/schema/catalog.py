"""Catalog and stock types: Product, Variant, StockLevel, Location, Money (pages: `connections`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.rows import LevelRow, LocationRow, ProductRow, VariantRow
from gql_inventory.kit.money import to_decimal
from gql_inventory.schema.docs import described_field
from gql_inventory.schema.enums import InventoryPolicy
from gql_inventory.stock.low_stock import is_low


@strawberry.type(
    name="Location",
    description="A warehouse or store holding stock. Public: storefronts may list locations.",
)
class LocationType:
    """A warehouse or store holding stock."""

    id: strawberry.ID = strawberry.field(
        description="The location's id, as adjustStock/setStock `locationId` and "
        "UserError.locationId give it."
    )
    name: str = strawberry.field(description="Display name, e.g. Main warehouse.")
    is_default: bool = strawberry.field(
        description="Used when adjustStock or setStock names no location. One location is "
        "the default."
    )
    priority: int = strawberry.field(
        description="Reservations draw from the lowest value first (ties: lowest id), "
        "splitting across locations when one has too few."
    )

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


@strawberry.type(
    name="StockLevel",
    description="Units of one variant at one location. Figures are whole units.",
)
class StockLevelType:
    """Units of one variant at one location."""

    on_hand: int = strawberry.field(description="Units physically at the location.")
    reserved: int = strawberry.field(
        description="Units held here by ACTIVE reservations (carts and unpaid orders)."
    )
    available: int = strawberry.field(
        description="onHand - reserved - unavailable - backordered: what a new reservation may "
        "take from here (below 0 only by backorders)."
    )
    backordered: int = strawberry.field(
        default=0,
        description="Units promised here to reservations and orders beyond what is on hand "
        "(CONTINUE policy).",
    )
    unavailable: int = strawberry.field(
        description="damaged + qualityControl + safetyStock: on hand here, never reserved or sold."
    )
    damaged: int = strawberry.field(description="Units on hand here in state DAMAGED.")
    quality_control: int = strawberry.field(
        description="Units on hand here in state QUALITY_CONTROL."
    )
    safety_stock: int = strawberry.field(description="Units on hand here in state SAFETY_STOCK.")
    version: int = strawberry.field(
        description="Grows by one with each change to this level (each StockMovement)."
    )
    location_id: strawberry.Private[int]
    variant_id: strawberry.Private[int]

    @described_field("Where the units are.")
    async def location(self, info: Info[Context, None]) -> LocationType:
        """Where the units are."""
        return await load_location(info, self.location_id)

    @described_field(
        "Units still expected here on OPEN or PARTIALLY_RECEIVED inbound shipments: not on "
        "hand, never reserved or sold."
    )
    async def incoming(self, info: Info[Context, None]) -> int:
        """Units open shipments still expect at this location."""
        expected = await info.context.loaders.shipments.incoming.load(self.variant_id)
        return expected.by_location.get(self.location_id, 0)

    @classmethod
    def from_row(cls, row: LevelRow) -> StockLevelType:
        """Build from a loader row."""
        return cls(
            on_hand=row.on_hand,
            reserved=row.reserved,
            available=row.available,
            backordered=row.backordered,
            unavailable=row.unavailable,
            damaged=row.damaged,
            quality_control=row.quality_control,
            safety_stock=row.safety_stock,
            version=row.version,
            location_id=row.location_id,
            variant_id=row.variant_id,
        )


@strawberry.type(name="VariantOption", description="One option of a variant, e.g. Size: Medium.")
class VariantOptionType:
    """One option of a variant, e.g. Size: Medium."""

    name: str = strawberry.field(description="The option's name, e.g. Size.")
    value: str = strawberry.field(description="This variant's value of it, e.g. Medium.")


@strawberry.type(
    name="Money",
    description="An amount in a currency. The amount is a decimal string in major units "
    '("19.99" for 19.99 USD, "1999" for 1999 JPY), never minor units (cents).',
)
class MoneyType:
    """An amount in a currency (decimal, not minor units)."""

    amount: Decimal = strawberry.field(
        description="Decimal string in major units, with the currency's number of decimals "
        "(ISO 4217: 2 for USD, 0 for JPY, 3 for KWD)."
    )
    currency_code: str = strawberry.field(description="ISO 4217 code, e.g. USD.")

    @classmethod
    def from_minor(cls, minor_units: int, currency_code: str) -> MoneyType:
        """``1999, "USD"`` -> 19.99 USD."""
        return cls(amount=to_decimal(minor_units, currency_code), currency_code=currency_code)


@strawberry.type(
    name="Variant",
    description="A SKU: a product in one combination of options. Stock figures are whole "
    "units summed over every location; `stockLevels` gives them per location.",
)
class VariantType:
    """A SKU: a product in one combination of options."""

    id: strawberry.ID = strawberry.field(description="The variant's id.")
    sku: str = strawberry.field(
        description="Stock keeping unit: the unique code lines and stock operations name it by."
    )
    title: str = strawberry.field(
        description="Its option values joined, e.g. Medium / Blue; Default Title when the "
        "product has no options."
    )
    low_stock_threshold: int = strawberry.field(
        description="Units: `isLowStock` is true, and lowStockAlerts sends LOW, when "
        "`available` is at or under this. 0: alerts off (never low, never listed, no alert); "
        "change it with setLowStockThreshold or updateVariantInventory."
    )
    inventory_policy: InventoryPolicy = strawberry.field(
        description="DENY (default): sell only what is available. CONTINUE: keep selling "
        "past zero, up to backorderLimit. Change it with updateVariantInventory."
    )
    backorder_limit: int | None = strawberry.field(
        description="CONTINUE only: the most units promised beyond stock; null: no limit. "
        "Kept but unused while the policy is DENY."
    )
    max_per_order: int | None = strawberry.field(
        description="The most units of this variant one reservation may hold (lines of it "
        "summed); null: no limit. More is PURCHASE_LIMIT_EXCEEDED. A reservation holding "
        "more than a limit lowered since keeps its units; only an increase is refused."
    )
    row: strawberry.Private[VariantRow]

    @classmethod
    def from_row(cls, row: VariantRow) -> VariantType:
        """Build from a loader row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            sku=row.sku,
            title=row.title,
            low_stock_threshold=row.low_stock_threshold,
            inventory_policy=row.inventory_policy,
            backorder_limit=row.backorder_limit,
            max_per_order=row.max_per_order,
            row=row,
        )

    @described_field("Option name/value pairs in the product's option order.")
    def options(self) -> list[VariantOptionType]:
        """Option name/value pairs in the product's option order."""
        return [VariantOptionType(name=o["name"], value=o["value"]) for o in self.row.options]

    @described_field("Current unit price (an order freezes it at checkout).")
    def price(self) -> MoneyType:
        """Unit price."""
        return MoneyType.from_minor(self.row.price_amount, self.row.currency_code)

    @described_field("The product this variant belongs to.")
    async def product(self, info: Info[Context, None]) -> ProductType:
        """The product this variant belongs to."""
        row = await info.context.loaders.product_by_id.load(self.row.product_id)
        if row is None:  # pragma: no cover - a foreign key makes this impossible
            raise LookupError(f"product {self.row.product_id} vanished")
        return ProductType.from_row(row)

    async def _levels(self, info: Info[Context, None]) -> list[LevelRow]:
        return await info.context.loaders.levels_by_variant.load(self.row.id)

    @described_field("Units physically held, summed over locations.")
    async def on_hand(self, info: Info[Context, None]) -> int:
        """Summed over locations."""
        return sum(level.on_hand for level in await self._levels(info))

    @described_field("Units held by ACTIVE reservations, summed over locations.")
    async def reserved(self, info: Info[Context, None]) -> int:
        """Summed over locations."""
        return sum(level.reserved for level in await self._levels(info))

    @described_field(
        "onHand - reserved - unavailable - backordered, summed over locations: what "
        "reserveStock may take from stock "
        "(it splits across locations by priority)."
    )
    async def available(self, info: Info[Context, None]) -> int:
        """Summed over locations: onHand - reserved - unavailable - backordered."""
        return sum(level.available for level in await self._levels(info))

    @described_field(
        "Units promised beyond stock (CONTINUE policy), summed over locations: reservations' "
        "and paid orders' units waiting for stock."
    )
    async def backordered(self, info: Info[Context, None]) -> int:
        """Summed over locations: backordered units."""
        return sum(level.backordered for level in await self._levels(info))

    @described_field(
        "Units on hand but not for sale (damaged + qualityControl + safetyStock), summed "
        "over locations."
    )
    async def unavailable(self, info: Info[Context, None]) -> int:
        """Summed over locations: damaged + quality control + safety stock."""
        return sum(level.unavailable for level in await self._levels(info))

    @described_field(
        "available <= lowStockThreshold, when lowStockThreshold is above 0 (0 turns "
        "low-stock alerts off: always false). The same rule picks lowStockVariants and "
        "lowStockAlerts."
    )
    async def is_low_stock(self, info: Info[Context, None]) -> bool:
        """available <= lowStockThreshold, and never with a threshold of 0 (`low_stock.is_low`)"""
        available = sum(level.available for level in await self._levels(info))
        return is_low(available, self.row.low_stock_threshold)

    @described_field(
        "Units still expected on OPEN or PARTIALLY_RECEIVED inbound shipments, summed over "
        "locations (a location without a stock level yet counts too)."
    )
    async def incoming(self, info: Info[Context, None]) -> int:
        """Units open shipments still expect, over every location."""
        return (await info.context.loaders.shipments.incoming.load(self.row.id)).total

    @described_field(
        "The earliest expectedAt of an OPEN or PARTIALLY_RECEIVED inbound shipment still "
        "expecting this variant; null when none is (or none has a date)."
    )
    async def next_incoming_at(self, info: Info[Context, None]) -> datetime | None:
        """Earliest expected arrival of an open shipment holding it."""
        return (await info.context.loaders.shipments.incoming.load(self.row.id)).next_at

    @described_field("One level per location holding this variant, by location priority.")
    async def stock_levels(self, info: Info[Context, None]) -> list[StockLevelType]:
        """One per location holding this variant, by location priority."""
        return [StockLevelType.from_row(level) for level in await self._levels(info)]


@strawberry.type(name="Product", description="A product and its variants (SKUs).")
class ProductType:
    """A product and its variants."""

    id: strawberry.ID = strawberry.field(description="The product's id.")
    handle: str = strawberry.field(
        description="Unique URL name, e.g. blue-shirt (Shopify's Handle)."
    )
    title: str = strawberry.field(description="Display name, e.g. Blue Shirt.")
    db_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ProductRow) -> ProductType:
        """Build from a loader row."""
        return cls(id=strawberry.ID(str(row.id)), handle=row.handle, title=row.title, db_id=row.id)

    @described_field("The product's variants, in the product's order.")
    async def variants(self, info: Info[Context, None]) -> list[VariantType]:
        """Variants in the product's order."""
        rows = await info.context.loaders.variants_by_product.load(self.db_id)
        return [VariantType.from_row(r) for r in rows]

    @described_field("Available units over every variant and location.")
    async def total_available(self, info: Info[Context, None]) -> int:
        """Available units over all variants and locations."""
        rows = await info.context.loaders.variants_by_product.load(self.db_id)
        levels = await info.context.loaders.levels_by_variant.load_many([r.id for r in rows])
        return sum(level.available for per_variant in levels for level in per_variant)
