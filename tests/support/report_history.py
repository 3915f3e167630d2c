"""A scripted day of history with fixed timestamps, for the inventory report tests.

Rows are written straight into the tables with explicit times (the report only reads).
The window is ``[T0, T0 + 24 h)``; the right answers, worked out by hand, are in
tests/test_report.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import (
    MovementKind,
    Order,
    OrderStatus,
    Refund,
    RefundSource,
    RefundStatus,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
)
from gql_inventory.stock.ledger import ensure_level
from tests.support.catalog import Catalog, make_location, make_product

T0 = datetime(2026, 3, 2, tzinfo=UTC)
END = T0 + timedelta(hours=24)


def at(hours: float) -> datetime:
    """T0 plus `hours` (negative: before the window)."""
    return T0 + timedelta(hours=hours)


async def _reservation(
    session: AsyncSession, status: ReservationStatus, created: float, updated: float
) -> None:
    await session.execute(
        insert(Reservation).values(
            id=uuid.uuid4(),
            status=status,
            expires_at=at(created + 0.25),
            ttl_seconds=900,
            created_at=at(created),
            updated_at=at(updated),
        )
    )


async def _order(
    session: AsyncSession,
    status: OrderStatus,
    currency: str,
    total: int,
    *,
    paid: float | None,
    created: float | None = None,
) -> uuid.UUID:
    order_id = uuid.uuid4()
    created_at = at(created if created is not None else (paid if paid is not None else 0))
    await session.execute(
        insert(Order).values(
            id=order_id,
            status=status,
            currency_code=currency,
            total_amount=total,
            payment_provider="fake",
            payment_applied_at=at(paid) if paid is not None else None,
            created_at=created_at,
            updated_at=created_at,
        )
    )
    return order_id


async def _refund(
    session: AsyncSession,
    order_id: uuid.UUID,
    amount: int,
    currency: str,
    status: RefundStatus,
    units: int,
    variant_id: int,
    created: float,
) -> None:
    await session.execute(
        insert(Refund).values(
            order_id=order_id,
            amount=amount,
            currency_code=currency,
            status=status,
            source=RefundSource.OURS,
            lines=[{"variant_id": variant_id, "quantity": units}],
            created_at=at(created),
        )
    )


class _Ledger:
    """Writes movements of levels and keeps the levels (`stock_levels`) in step."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.levels: dict[int, tuple[int, int, int, int, int]] = {}  # id -> v, l, oh, r, ver

    async def level(self, variant_id: int, location_id: int) -> int:
        level_id = await ensure_level(self.session, variant_id=variant_id, location_id=location_id)
        self.levels[level_id] = (variant_id, location_id, 0, 0, 0)
        return level_id

    async def move(
        self,
        level_id: int,
        kind: MovementKind,
        hours: float,
        on_hand: int,
        reserved: int = 0,
        reason: str | None = None,
    ) -> None:
        variant_id, location_id, oh, res, version = self.levels[level_id]
        oh, res, version = oh + on_hand, res + reserved, version + 1
        self.levels[level_id] = (variant_id, location_id, oh, res, version)
        values: dict[str, Any] = {
            "stock_level_id": level_id,
            "variant_id": variant_id,
            "location_id": location_id,
            "kind": kind,
            "on_hand_delta": on_hand,
            "reserved_delta": reserved,
            "on_hand_after": oh,
            "reserved_after": res,
            "version": version,
            "reason": reason,
            "occurred_at": at(hours),
            "actor": "system",
        }
        await self.session.execute(insert(StockMovement).values(**values))
        await self.session.execute(
            update(StockLevel)
            .where(StockLevel.id == level_id)
            .values(on_hand=oh, reserved=res, version=version)
        )


async def write_history(session: AsyncSession) -> Catalog:
    """The scripted day (see tests/test_report.py for what each row is for)."""
    catalog = Catalog()
    main = catalog.locations["Main"] = await make_location(session, "Main", default=True)
    store = catalog.locations["Store"] = await make_location(session, "Store", priority=200)
    await make_product(
        session,
        catalog,
        "report-thing",
        "Report Thing",
        [("RPT-A", "A", 1000, {}), ("RPT-B", "B", 1000, {}), ("RPT-C", "C", 1000, {})],
    )
    a, b, c = (catalog.variants[s] for s in ("RPT-A", "RPT-B", "RPT-C"))

    # Reservations: 10 created in the window (one exactly at `from`), 4 of them paid
    # (COMPLETED), 3 expired, 2 released, 1 active; around them, events outside.
    completed, expired, released = (
        ReservationStatus.COMPLETED,
        ReservationStatus.EXPIRED,
        ReservationStatus.RELEASED,
    )
    for created in (0, 1, 2, 3):
        await _reservation(session, completed, created, created + 1)
    for created in (4, 5, 6):
        await _reservation(session, expired, created, created + 0.25)
    for created in (7, 8):
        await _reservation(session, released, created, created + 0.1)
    await _reservation(session, ReservationStatus.ACTIVE, 23.9, 23.9)
    await _reservation(session, completed, -1, 0.5)  # created before, paid inside
    await _reservation(session, expired, -2, -1.75)  # wholly before
    await _reservation(session, ReservationStatus.ACTIVE, 24, 24)  # exactly at `to`
    await _reservation(session, completed, 23, 24)  # created inside, paid at `to`

    # Orders paid: at `from` (counts), inside, at `to` (does not count), before.
    paid_usd = await _order(session, OrderStatus.PAID, "USD", 5000, paid=0)
    partly = await _order(session, OrderStatus.PARTIALLY_REFUNDED, "USD", 2500, paid=3)
    refunded = await _order(session, OrderStatus.REFUNDED, "USD", 1000, paid=4)
    paid_eur = await _order(session, OrderStatus.PAID, "EUR", 3000, paid=5)
    await _order(session, OrderStatus.PAID, "USD", 9999, paid=24)
    paid_gbp = await _order(session, OrderStatus.PAID, "GBP", 2000, paid=-20)
    await _order(session, OrderStatus.NEEDS_ATTENTION, "USD", 100, paid=None, created=6)
    await _order(session, OrderStatus.NEEDS_ATTENTION, "USD", 100, paid=None, created=24)
    assert paid_usd

    ok, pending, failed = RefundStatus.SUCCEEDED, RefundStatus.PENDING, RefundStatus.FAILED
    await _refund(session, partly, 1250, "USD", ok, 1, a, created=5)
    await _refund(session, refunded, 1000, "USD", pending, 1, a, created=7)
    await _refund(session, partly, 500, "USD", failed, 1, a, created=8)  # failed: ignored
    await _refund(session, paid_eur, 3000, "EUR", ok, 2, c, created=24)  # at `to`
    await _refund(session, paid_gbp, 700, "GBP", ok, 1, b, created=1)  # paid before

    ledger = _Ledger(session)
    a_main = await ledger.level(a, main)
    b_main, b_store = await ledger.level(b, main), await ledger.level(b, store)
    c_main = await ledger.level(c, main)
    R = MovementKind
    # A (one location): 5 received; 2 reserved then sold; 3 sold -> 0 (stockout 1 at
    # 3 h); 1 returned at 5 h; 1 LOST at 6 h -> 0 (stockout 2); counted back to 4 at 22 h.
    await ledger.move(a_main, R.RECEIPT, -10, 5)
    await ledger.move(a_main, R.RESERVATION, 1, 0, 2)
    await ledger.move(a_main, R.SALE, 2, -2, -2)
    await ledger.move(a_main, R.SALE, 3, -3)
    await ledger.move(a_main, R.RETURN, 5, 1)
    await ledger.move(a_main, R.ADJUSTMENT, 6, -1, reason="LOST: shelf")
    await ledger.move(a_main, R.COUNT, 22, 4, reason="CYCLE_COUNT")
    # B (two locations): Main reaches 0 at -1 h while Store still has 1 (no stockout of
    # the variant); Store's DAMAGED unit at -0.5 h makes the variant 0 before the window,
    # until a COUNT exactly at `to`.
    await ledger.move(b_main, R.RECEIPT, -5, 2)
    await ledger.move(b_store, R.RECEIPT, -4, 1)
    await ledger.move(b_main, R.SALE, -1, -2)
    await ledger.move(b_store, R.ADJUSTMENT, -0.5, -1, reason="DAMAGED")
    await ledger.move(b_main, R.COUNT, 24, 3, reason="CYCLE_COUNT")
    # C: FOUND exactly at `from`; a CORRECTION (not a discrepancy); DAMAGED -> 0 at 9 h
    # (stockout) and stays 0. At 12 h one transaction (same instant) receives 1 and
    # takes it back out: a single step still at 0, no new stockout.
    await ledger.move(c_main, R.ADJUSTMENT, 0, 2, reason="FOUND")
    await ledger.move(c_main, R.ADJUSTMENT, 8, -1, reason="CORRECTION: typo")
    await ledger.move(c_main, R.ADJUSTMENT, 9, -1, reason="DAMAGED: dropped")
    await ledger.move(c_main, R.RECEIPT, 12, 1)
    await ledger.move(c_main, R.ADJUSTMENT, 12, -1, reason="CORRECTION")
    return catalog
