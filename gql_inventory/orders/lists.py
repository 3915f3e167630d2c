"""Back-office lists: orders newest first, reservations soonest expiry first.

Keyset pages: a page starts strictly after the (sort timestamp, id) of the cursor's
row, so rows inserted meanwhile never shift a page (no duplicate, no skip). Each page
is ONE SQL statement: the filtered rows as a CTE, their count, and the page itself as
a LATERAL subquery left-joined to the count (so an empty page still returns the
count).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import RowMapping, Select, and_, exists, func, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.models import Order, Reservation, ReservationLine, Variant


@dataclass(frozen=True, slots=True)
class ListPage:
    """Up to `first` rows (`orders` or `reservations` table rows), whether more follow,
    and how many rows match the filters in all (`total_count`, cursor aside)."""

    rows: list[RowMapping]
    has_next_page: bool
    total_count: int


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a page starts: strictly after this row's sort timestamp, then id."""

    at: datetime
    id: uuid.UUID


def as_utc(moment: datetime) -> datetime:
    """`moment` with its offset; a naive datetime is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def keyset_page(
    conn: AsyncConnection,
    filtered: Select[tuple[object, ...]],
    *,
    first: int,
    after: Keyset | None,
    sort_column: str,
    descending: bool,
) -> ListPage:
    """One statement: the count of `filtered` (any table with an `id`) and its page after
    `after`, sorted by (`sort_column`, id), descending or ascending (also the inbound
    shipments' list, `stock.shipment_reads`)."""
    rows_cte = filtered.cte("filtered")
    total = select(func.count().label("total_count")).select_from(rows_cte).subquery("total")
    at, key = rows_cte.c[sort_column], rows_cte.c.id
    page = select(rows_cte).order_by(
        *((at.desc(), key.desc()) if descending else (at.asc(), key.asc()))
    )
    if after is not None:
        position = tuple_(at, key)
        bound = tuple_(after.at, after.id)
        page = page.where(position < bound if descending else position > bound)
    page_sub = page.limit(first + 1).lateral("page")
    p_at, p_key = page_sub.c[sort_column], page_sub.c.id
    stmt = (
        select(total.c.total_count, page_sub)
        .select_from(total.outerjoin(page_sub, true()))
        .order_by(*((p_at.desc(), p_key.desc()) if descending else (p_at.asc(), p_key.asc())))
    )
    result = [r._mapping for r in await conn.execute(stmt)]
    total_count = int(result[0]["total_count"]) if result else 0
    rows = [r for r in result if r["id"] is not None]
    return ListPage(rows=rows[:first], has_next_page=len(rows) > first, total_count=total_count)


async def order_page(
    conn: AsyncConnection,
    *,
    first: int,
    after: Keyset | None,
    statuses: Collection[str] | None,
    created_after: datetime | None,
    created_before: datetime | None,
) -> ListPage:
    """Orders newest first (`created_at`, then id, descending), after the cursor's row.

    `statuses` None: all (an empty collection: none); `created_after` and
    `created_before` are exclusive bounds on `created_at` (naive: UTC).
    """
    filtered = select(Order.__table__)
    if statuses is not None:
        filtered = filtered.where(Order.status.in_(list(statuses)))
    if created_after is not None:
        filtered = filtered.where(Order.created_at > as_utc(created_after))
    if created_before is not None:
        filtered = filtered.where(Order.created_at < as_utc(created_before))
    return await keyset_page(
        conn, filtered, first=first, after=after, sort_column="created_at", descending=True
    )


async def reservation_page(
    conn: AsyncConnection,
    *,
    first: int,
    after: Keyset | None,
    statuses: Collection[str] | None,
    expires_before: datetime | None,
    sku: str | None = None,
) -> ListPage:
    """Reservations soonest expiry first (`expires_at`, then id, ascending), after the
    cursor's row. `statuses` None: all, EXPIRED and the other ended ones included (empty:
    none); `expires_before` is exclusive; `sku` keeps reservations with a line of that
    variant (exact SKU; unknown: none), each listed once however many lines it has."""
    filtered = select(Reservation.__table__)
    if statuses is not None:
        filtered = filtered.where(Reservation.status.in_(list(statuses)))
    if sku is not None:
        filtered = filtered.where(
            exists().where(
                and_(
                    ReservationLine.reservation_id == Reservation.id,
                    ReservationLine.variant_id == Variant.id,
                    Variant.sku == sku,
                )
            )
        )
    if expires_before is not None:
        filtered = filtered.where(Reservation.expires_at < as_utc(expires_before))
    return await keyset_page(
        conn, filtered, first=first, after=after, sort_column="expires_at", descending=False
    )
