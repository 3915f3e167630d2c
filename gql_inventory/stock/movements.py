"""Reading the stock movement ledger, newest first, with keyset pagination."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.models import StockMovement, Variant
from gql_inventory.stock.ledger import AppliedMovement


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A `stock_movements` row and the SKU of its variant."""

    movement: AppliedMovement
    sku: str


@dataclass(frozen=True, slots=True)
class MovementPage:
    """Movements, newest first, and whether older ones follow."""

    rows: list[LedgerEntry]
    has_next_page: bool


def _entries() -> Select[tuple[object, ...]]:
    return select(StockMovement.__table__, Variant.sku).join(
        Variant, Variant.id == StockMovement.variant_id
    )


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
    stmt = _entries().order_by(StockMovement.id.desc()).limit(first + 1)
    if before_id is not None:
        stmt = stmt.where(StockMovement.id < before_id)
    if sku is not None:
        stmt = stmt.where(Variant.sku == sku)
    if reference is not None:
        stmt = stmt.where(StockMovement.reference == reference)
    rows = [
        LedgerEntry(movement=AppliedMovement.from_row(r), sku=r.sku)
        for r in await conn.execute(stmt)
    ]
    return MovementPage(rows=rows[:first], has_next_page=len(rows) > first)


async def movement_by_id(conn: AsyncConnection, movement_id: int) -> LedgerEntry | None:
    """The ledger row with this id, or None."""
    found = (await conn.execute(_entries().where(StockMovement.id == movement_id))).first()
    return LedgerEntry(movement=AppliedMovement.from_row(found), sku=found.sku) if found else None


async def movements_by_ids(conn: AsyncConnection, movement_ids: list[int]) -> list[LedgerEntry]:
    """The ledger rows with these ids, in the order of `movement_ids` (missing ones left out);
    one statement."""
    if not movement_ids:
        return []
    found = await conn.execute(_entries().where(StockMovement.id.in_(movement_ids)))
    by_id = {int(r.id): LedgerEntry(movement=AppliedMovement.from_row(r), sku=r.sku) for r in found}
    return [by_id[i] for i in movement_ids if i in by_id]
