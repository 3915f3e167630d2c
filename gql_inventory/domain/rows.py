"""Read models of the catalog: small frozen rows built from Core reads.

The SQL columns each row is built from sit beside it (`PRODUCT_COLUMNS` ...), so
the domain's reads (`stock.products`) and the GraphQL layer's DataLoaders
(`gql_inventory.readmodel.loaders`) select and build them the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gql_inventory.domain.figures import StockFigures
from gql_inventory.models import (
    InventoryPolicy,
    Location,
    Product,
    ReservationStatus,
    StockLevel,
    Variant,
)


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A product (`id`, Shopify `handle`, `title`)."""

    id: int
    handle: str
    title: str


@dataclass(frozen=True, slots=True)
class VariantRow:
    """A variant; `price_amount` in minor units of `currency_code`. Inventory settings:
    `inventory_policy`, `backorder_limit` (units beyond stock, CONTINUE only; None: no
    limit), `max_per_order` (units in one reservation; None: no limit)."""

    id: int
    product_id: int
    sku: str
    title: str
    options: list[dict[str, str]]
    price_amount: int
    currency_code: str
    low_stock_threshold: int
    inventory_policy: InventoryPolicy = InventoryPolicy.DENY
    backorder_limit: int | None = None
    max_per_order: int | None = None


@dataclass(frozen=True, slots=True)
class LocationRow:
    """A location; lower `priority` is drawn from first."""

    id: int
    name: str
    is_default: bool
    priority: int


@dataclass(frozen=True, slots=True)
class LevelRow(StockFigures):
    """A stock level's figures (units); the states are on hand but not for sale (ADR 0017);
    `backordered` is promised beyond stock (ADR 0018)."""

    id: int
    variant_id: int
    location_id: int
    on_hand: int
    reserved: int
    version: int
    damaged: int = 0
    quality_control: int = 0
    safety_stock: int = 0
    backordered: int = 0


PRODUCT_COLUMNS = (Product.id, Product.handle, Product.title)
VARIANT_COLUMNS = (
    Variant.id,
    Variant.product_id,
    Variant.sku,
    Variant.title,
    Variant.options,
    Variant.price_amount,
    Variant.currency_code,
    Variant.low_stock_threshold,
    Variant.inventory_policy,
    Variant.backorder_limit,
    Variant.max_per_order,
)
LOCATION_COLUMNS = (Location.id, Location.name, Location.is_default, Location.priority)
LEVEL_COLUMNS = (
    StockLevel.id,
    StockLevel.variant_id,
    StockLevel.location_id,
    StockLevel.on_hand,
    StockLevel.reserved,
    StockLevel.version,
    StockLevel.damaged,
    StockLevel.quality_control,
    StockLevel.safety_stock,
    StockLevel.backordered,
)


def product_row(m: Any) -> ProductRow:
    """Build from a row mapping with `PRODUCT_COLUMNS`."""
    return ProductRow(id=m["id"], handle=m["handle"], title=m["title"])


def variant_row(m: Any) -> VariantRow:
    """Build from a row mapping with `VARIANT_COLUMNS`."""
    return VariantRow(
        id=m["id"],
        product_id=m["product_id"],
        sku=m["sku"],
        title=m["title"],
        options=list(m["options"] or []),
        price_amount=m["price_amount"],
        currency_code=m["currency_code"],
        low_stock_threshold=m["low_stock_threshold"],
        inventory_policy=InventoryPolicy(m["inventory_policy"]),
        backorder_limit=m["backorder_limit"],
        max_per_order=m["max_per_order"],
    )


def location_row(m: Any) -> LocationRow:
    """Build from a row mapping with `LOCATION_COLUMNS`."""
    return LocationRow(
        id=m["id"], name=m["name"], is_default=m["is_default"], priority=m["priority"]
    )


def level_row(m: Any) -> LevelRow:
    """Build from a row mapping with `LEVEL_COLUMNS`."""
    return LevelRow(
        id=m["id"],
        variant_id=m["variant_id"],
        location_id=m["location_id"],
        on_hand=m["on_hand"],
        reserved=m["reserved"],
        version=m["version"],
        damaged=m["damaged"],
        quality_control=m["quality_control"],
        safety_stock=m["safety_stock"],
        backordered=m["backordered"],
    )


@dataclass(frozen=True, slots=True)
class ReservationRow:
    """A `reservations` row: times timezone-aware,
    `ttl_seconds` the TTL it was made with, `idempotency_key` the key's value if any."""

    id: uuid.UUID
    status: ReservationStatus
    expires_at: datetime
    ttl_seconds: int
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime


#: The columns `ReservationRow` is built from (raw SQL).
RESERVATION_COLUMNS = "id, status, expires_at, ttl_seconds, idempotency_key, created_at, updated_at"


def reservation_row(m: Any) -> ReservationRow:
    """Build from a row mapping with `RESERVATION_COLUMNS`."""
    return ReservationRow(
        id=m["id"],
        status=ReservationStatus(m["status"]),
        expires_at=m["expires_at"],
        ttl_seconds=m["ttl_seconds"],
        idempotency_key=m["idempotency_key"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )
