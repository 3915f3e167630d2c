"""Reading the stock movement ledger, newest first, with keyset pagination."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.models import StockMovement, Variant


@dataclass(frozen=True, slots=True)
class MovementPage:
    """Movements (rows of `stock_movements` plus `sku`) and whether older ones follow."""

    rows: list[RowMapping]
    has_next_page: bool


async def movement_page(
    conn: AsyncConnection,
    *,
    first: int,
    before_id: int | None,
    sku: str | None = None,
    reference: str | None = None,
) -> MovementPage:
    """Up to `first` movements with id below `before_id`, newest first, optionally for
    one SKU or one reference (e.g. ``order:<id>``)."""
    stmt = (
        select(StockMovement.__table__, Variant.sku)
        .join(Variant, Variant.id == StockMovement.variant_id)
        .order_by(StockMovement.id.desc())
        .limit(first + 1)
    )
    if before_id is not None:
        stmt = stmt.where(StockMovement.id < before_id)
    if sku is not None:
        stmt = stmt.where(Variant.sku == sku)
    if reference is not None:
        stmt = stmt.where(StockMovement.reference == reference)
    rows = [r._mapping for r in await conn.execute(stmt)]
    return MovementPage(rows=rows[:first], has_next_page=len(rows) > first)
