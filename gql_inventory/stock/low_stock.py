"""Low stock, per variant: the operator's list and the threshold that drives it.

One rule everywhere (`Variant.isLowStock`, `Query.lowStockVariants`,
`products(lowStockOnly)` and the `lowStockAlerts` subscription): a variant is low
when its threshold is above 0 and its available units (on hand - reserved) are at
or under it. A threshold of 0 turns alerts off for the variant (contract
`SetLowStockThresholdInput.threshold`): it is never low, never listed, and
raises no LOW, OUT_OF_STOCK or BACK_IN_STOCK alert.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.domain.errors import in_input
from gql_inventory.domain.rows import VARIANT_COLUMNS, VariantRow, variant_row
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import StockLevel, Variant
from gql_inventory.stock.levels import available_units
from gql_inventory.stock.variant_settings import (
    MAX_UNITS,
    InventorySettings,
    check_units,
    update_variant_inventory,
)

#: The highest threshold accepted (units), as for one adjustment.
MAX_THRESHOLD = MAX_UNITS

#: Keys of the (available, variant id) keyset pack into one integer: available << 63 | id.
_ID_BITS = 63


def is_low(available: int, threshold: int) -> bool:
    """The low-stock rule: alerts on (threshold > 0) and available at or under it."""
    return threshold > 0 and available <= threshold


class LowStockState:
    """Alert states (values of the GraphQL `LowStockState` enum)."""

    LOW = "LOW"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    BACK_IN_STOCK = "BACK_IN_STOCK"


def _band(available: int, threshold: int) -> str:
    """OK, LOW or OUT_OF_STOCK; always OK with a threshold of 0 (alerts off, `is_low`)."""
    if not is_low(available, threshold):
        return "OK"
    return LowStockState.OUT_OF_STOCK if available <= 0 else LowStockState.LOW


def crossing(before: int, after: int, threshold: int) -> str | None:
    """The alert of a variant whose available units (summed over its locations) went from
    `before` to `after` under `threshold`: a `LowStockState` value when it changed band
    (OK, LOW, OUT_OF_STOCK; back to OK is BACK_IN_STOCK), else None. The one rule of the
    live `lowStockAlerts` (`live.alerts`) and the outbox's STOCK_LOW / STOCK_OUT /
    STOCK_BACK_IN events (`outbound.events`)."""
    old, new = _band(before, threshold), _band(after, threshold)
    if old == new:
        return None
    return LowStockState.BACK_IN_STOCK if new == "OK" else new


async def set_low_stock_threshold(uow: UnitOfWork, *, sku: str, threshold: int) -> int:
    """Set the low-stock threshold (units) of the variant `sku`; returns its id.

    The write of `variant_settings.update_variant_inventory` (one path for a variant's
    settings). Not a stock movement: no ledger row. The live alert tracker re-reads
    the threshold with each stock event (`live.alerts`), so it applies from the next
    event. Raises `InvalidInput` (below 0 or above `MAX_THRESHOLD`), `UnknownSku`.
    """
    check_units(threshold, name="threshold", field=in_input("threshold"))
    return await update_variant_inventory(
        uow, sku=sku, settings=InventorySettings(low_stock_threshold=threshold)
    )


@dataclass(frozen=True, slots=True)
class LowStockRow:
    """A low variant and its available units (summed, or at the location asked for)."""

    variant: VariantRow
    available: int

    @property
    def key(self) -> int:
        """Its keyset position (available, id) as one non-negative integer (the cursor)."""
        return pack_key(self.available, self.variant.id)


@dataclass(frozen=True, slots=True)
class LowStockPage:
    """A page of low variants, fewest available first, and the count of all of them."""

    rows: list[LowStockRow]
    has_next_page: bool
    total_count: int


def pack_key(available: int, variant_id: int) -> int:
    """(available, id) -> one integer ordered like the pair (both are >= 0)."""
    return (available << _ID_BITS) | variant_id


def unpack_key(key: int) -> tuple[int, int]:
    """The inverse of `pack_key`."""
    return key >> _ID_BITS, key & ((1 << _ID_BITS) - 1)


def _available(location_id: int | None) -> ColumnElement[int]:
    levels = select(func.coalesce(func.sum(available_units()), 0)).where(
        StockLevel.variant_id == Variant.id
    )
    if location_id is not None:
        levels = levels.where(StockLevel.location_id == location_id)
    return levels.scalar_subquery()


async def low_stock_page(
    conn: AsyncConnection, *, location_id: int | None, first: int, after: int | None
) -> LowStockPage:
    """Low variants ordered by (available, id), after the packed key `after`.

    Without `location_id`, available is summed over every location (variants
    without any level count 0, as `Variant.available` does). With it, only
    variants holding a level at that location are considered, by their available
    units there (an unknown location gives an empty page). One SQL statement,
    `totalCount` included (it counts every low variant, not just those after
    `after`).
    """
    available = _available(location_id).label("available")
    low = select(*VARIANT_COLUMNS, available).where(
        and_(Variant.low_stock_threshold > 0, available <= Variant.low_stock_threshold)
    )
    if location_id is not None:
        low = low.where(
            select(StockLevel.id)
            .where(StockLevel.variant_id == Variant.id, StockLevel.location_id == location_id)
            .exists()
        )
    cte = low.cte("low")
    total = select(func.count().label("total_count")).select_from(cte).subquery("total")
    page = select(cte).order_by(cte.c.available, cte.c.id).limit(first + 1)
    if after is not None:
        page = page.where(tuple_(cte.c.available, cte.c.id) > tuple_(*unpack_key(after)))
    lateral = page.lateral("page")
    stmt = select(total.c.total_count, lateral).select_from(total.outerjoin(lateral, true()))
    result = (await conn.execute(stmt)).all()
    total_count = int(result[0].total_count)
    rows = [
        LowStockRow(variant=variant_row(r._mapping), available=int(r.available))
        for r in result
        if r.id is not None
    ]
    return LowStockPage(rows=rows[:first], has_next_page=len(rows) > first, total_count=total_count)
