"""Expiry of reservations past their `expires_at` (EXPIRY movements; pending orders CANCELLED).

Runs as a periodic task in every app process and as `gql-inventory
expire-reservations`; a PostgreSQL advisory lock lets one sweeper work at a
time. Each reservation is locked like any other use case does (reservation,
order, levels by id), and re-checked once locked, so a sweep can race a
payment safely: whichever commits first wins, the other sees a final status.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.inventory.orders import cancel_pending_order_of
from gql_inventory.inventory.reservations import end_reservation, lock_reservation
from gql_inventory.models import MovementKind, Reservation, ReservationStatus

#: pg advisory lock key of the sweeper ("gqlinv-expiry" folded into a bigint).
SWEEPER_LOCK_KEY = 0x67716C696E765F65

_LOCK_HELD_LEVELS = text(
    """
    SELECT id FROM stock_levels
     WHERE id IN (SELECT stock_level_id FROM reservation_lines
                   WHERE reservation_id = ANY(:ids))
     ORDER BY id
       FOR UPDATE
    """
)


@dataclass
class SweepResult:
    """What one sweep did. `skipped_lock` when another sweeper held the lock."""

    expired: list[uuid.UUID] = field(default_factory=list)
    cancelled_orders: list[uuid.UUID] = field(default_factory=list)
    skipped_lock: bool = False


async def due_reservations(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 500
) -> list[uuid.UUID]:
    """Ids of ACTIVE reservations whose expiry has passed, oldest first."""
    now = now or datetime.now(UTC)
    rows = await session.execute(
        select(Reservation.id)
        .where(Reservation.status == ReservationStatus.ACTIVE, Reservation.expires_at <= now)
        .order_by(Reservation.expires_at)
        .limit(limit)
    )
    return [r[0] for r in rows]


async def expire_reservations(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    limit: int = 500,
) -> SweepResult:
    """Expire up to `limit` due reservations in the caller's transaction.

    Takes the sweeper advisory lock for the transaction (`pg_try_advisory_xact_lock`);
    when another sweeper holds it, returns at once with `skipped_lock`. A
    reservation locked by a concurrent payment is skipped (`SKIP LOCKED`) and
    taken by the next sweep if still due.
    """
    result = SweepResult()
    got = (
        await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEPER_LOCK_KEY})
    ).scalar_one()
    if not got:
        result.skipped_lock = True
        return result
    now = now or datetime.now(UTC)
    batch: list[Reservation] = []
    for reservation_id in await due_reservations(session, now=now, limit=limit):
        reservation = await lock_reservation(session, reservation_id, skip_locked=True)
        if reservation is None:
            continue
        await session.refresh(reservation)
        if reservation.status is not ReservationStatus.ACTIVE or reservation.expires_at > now:
            continue
        batch.append(reservation)
    # One sweep ends many reservations in one transaction: lock all their levels first, in
    # ascending id order (the global lock order). Locking them reservation by reservation
    # would hold one's levels while waiting for the next one's, and deadlock with a cart
    # that locks the same levels in id order.
    if batch:
        await session.execute(_LOCK_HELD_LEVELS, {"ids": [r.id for r in batch]})
    for reservation in batch:
        reservation_id = reservation.id
        await end_reservation(
            session, reservation, status=ReservationStatus.EXPIRED, kind=MovementKind.EXPIRY
        )
        result.expired.append(reservation_id)
        order_id = await cancel_pending_order_of(
            session, reservation_id, reason="reservation expired"
        )
        if order_id is not None:
            result.cancelled_orders.append(order_id)
    return result
