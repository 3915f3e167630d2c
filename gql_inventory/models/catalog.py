"""Catalog tables: products, variants (SKUs) and locations."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gql_inventory.models.base import Base, created_at_column


class Product(Base):
    """A product as the shop lists it (Shopify's *handle* is its stable key)."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    handle: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(Text)
    vendor: Mapped[str | None] = mapped_column(Text)
    product_type: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class InventoryPolicy(enum.StrEnum):
    """Whether a variant keeps selling past zero (Shopify's `inventoryPolicy`)."""

    DENY = "DENY"
    CONTINUE = "CONTINUE"


class Variant(Base):
    """A SKU: one product in one combination of options.

    `options` is a JSON list of ``{"name": "Size", "value": "Medium"}`` in the
    product's option order. `price_amount` is in the currency's minor units
    (cents for USD, yen for JPY). `inventory_policy` CONTINUE keeps selling past zero
    up to `backorder_limit` units promised beyond stock (NULL: no limit);
    `max_per_order` caps the units of this variant in one reservation (NULL: no cap).
    docs/adr/0018-backorders.md.
    """

    __tablename__ = "variants"
    __table_args__ = (
        CheckConstraint("price_amount >= 0", name="price_non_negative"),
        CheckConstraint("low_stock_threshold >= 0", name="threshold_non_negative"),
        CheckConstraint("char_length(currency_code) = 3", name="currency_iso4217"),
        CheckConstraint("inventory_policy IN ('DENY', 'CONTINUE')", name="inventory_policy_known"),
        CheckConstraint(
            "backorder_limit IS NULL OR backorder_limit >= 0", name="backorder_limit_non_negative"
        ),
        CheckConstraint(
            "max_per_order IS NULL OR max_per_order >= 1", name="max_per_order_positive"
        ),
        Index("ix_variants_product_id_position", "product_id", "position"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(Text)
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency_code: Mapped[str] = mapped_column(String(3), server_default=text("'USD'"))
    low_stock_threshold: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    inventory_policy: Mapped[str] = mapped_column(String(16), server_default=text("'DENY'"))
    backorder_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_per_order: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = created_at_column()


class Location(Base):
    """A warehouse or store that holds stock.

    `priority`: lower is drawn from first when a reservation is allocated.
    Exactly one location is the default (a partial unique index holds that).
    """

    __tablename__ = "locations"
    __table_args__ = (
        Index(
            "uq_locations_single_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    priority: Mapped[int] = mapped_column(Integer, server_default=text("100"))
    created_at: Mapped[datetime] = created_at_column()
