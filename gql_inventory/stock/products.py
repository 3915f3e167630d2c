"""Catalog reads: product pages with text search, the low-stock and the in-stock filter."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from gql_inventory.domain.rows import PRODUCT_COLUMNS, ProductRow, product_row
from gql_inventory.models import InventoryPolicy, Product, StockLevel, Variant
from gql_inventory.stock.levels import available_units


@dataclass(frozen=True, slots=True)
class ProductPage:
    """Up to `first` products after a cursor, and whether more follow."""

    products: list[ProductRow]
    has_next_page: bool


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def product_page(
    conn: AsyncConnection,
    *,
    first: int,
    after_id: int | None,
    query: str | None,
    low_stock_only: bool,
    in_stock_only: bool = False,
) -> ProductPage:
    """Products ordered by id, after `after_id`, filtered; one SQL statement.

    `query` matches case-insensitively a substring of the title, the handle or
    any variant's SKU. `low_stock_only` keeps products with at least one variant
    whose available units (summed over locations) are at or under its threshold
    (a threshold of 0 turns alerts off: `low_stock.is_low`). `in_stock_only` keeps
    products with a variant sellable now (`sellable_now`). Filters combine (AND); the
    keyset (id > `after_id`) pages over the filtered rows, so a page never skips or
    repeats a product whatever changed since the previous one.
    """
    stmt = select(*PRODUCT_COLUMNS).order_by(Product.id).limit(first + 1)
    if after_id is not None:
        stmt = stmt.where(Product.id > after_id)
    if query:
        pattern = f"%{_escape_like(query.strip())}%"
        sku_match = exists().where(
            and_(Variant.product_id == Product.id, Variant.sku.ilike(pattern, escape="\\"))
        )
        stmt = stmt.where(
            or_(
                Product.title.ilike(pattern, escape="\\"),
                Product.handle.ilike(pattern, escape="\\"),
                sku_match,
            )
        )
    if low_stock_only:
        available = (
            select(func.coalesce(func.sum(available_units()), 0))
            .where(StockLevel.variant_id == Variant.id)
            .scalar_subquery()
        )
        stmt = stmt.where(
            exists().where(
                and_(
                    Variant.product_id == Product.id,
                    Variant.low_stock_threshold > 0,
                    available <= Variant.low_stock_threshold,
                )
            )
        )
    if in_stock_only:
        stmt = stmt.where(exists().where(and_(Variant.product_id == Product.id, sellable_now())))
    rows = [product_row(r._mapping) for r in await conn.execute(stmt)]
    return ProductPage(products=rows[:first], has_next_page=len(rows) > first)


def sellable_now() -> ColumnElement[bool]:
    """SQL, correlated to `Variant`: the variant can be sold now (docs/backoffice.md).

    True when one of its levels has units a buyer may take (``on_hand - reserved -
    unavailable - backordered > 0``: per level, so a backorder at one location never
    hides units at another), or when its `inventory_policy` is CONTINUE and its
    backordered units (all locations) are under `backorder_limit` (NULL: no limit).
    """
    in_stock = exists().where(
        and_(
            StockLevel.variant_id == Variant.id,
            available_units() - StockLevel.backordered > 0,
        )
    )
    backordered = (
        select(func.coalesce(func.sum(StockLevel.backordered), 0))
        .where(StockLevel.variant_id == Variant.id)
        .scalar_subquery()
    )
    may_promise = and_(
        Variant.inventory_policy == InventoryPolicy.CONTINUE.value,
        or_(Variant.backorder_limit.is_(None), backordered < Variant.backorder_limit),
    )
    return or_(in_stock, may_promise)


async def product_by_handle(conn: AsyncConnection, handle: str) -> ProductRow | None:
    """The product with this exact handle (e.g. ``blue-shirt``), or None."""
    found = (await conn.execute(select(*PRODUCT_COLUMNS).where(Product.handle == handle))).first()
    return product_row(found._mapping) if found else None


async def variant_ids_of(conn: AsyncConnection, skus: Collection[str]) -> dict[str, int]:
    """``{sku: variant id}`` of the `skus` that exist (unknown SKUs are left out)."""
    rows = await conn.execute(select(Variant.id, Variant.sku).where(Variant.sku.in_(skus)))
    return {r.sku: int(r.id) for r in rows}
