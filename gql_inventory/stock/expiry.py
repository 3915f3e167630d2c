"""Expiry of reservations past their `expires_at` (EXPIRY movements; pending orders CANCELLED).

Runs as a periodic task in every app process and as `gql-inventory
expire-reservations`; a PostgreSQL advisory lock lets one sweeper work at a
time. Lock order: first every due reservation (`SKIP LOCKED`: one a payment holds
waits for the next sweep), re-checked once locked; then all their stock levels at
once in ascending id order, the global order carts use, so a sweep never holds one
reservation's levels while waiting for another's. A sweep can race a payment
safely: whichever commits first wins, the other sees a final status.

Failures are isolated: each reservation expires inside its own SAVEPOINT, so one
that fails (a constraint, a trigger, a bug) rolls back alone, stays ACTIVE for the
next sweep, and is reported with its error; the rest of the sweep commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind, Reservation, ReservationStatus
from gql_inventory.orders.orders import cancel_pending_order_of
from gql_inventory.stock.ledger import lock_levels_held_by
from gql_inventory.stock.locks import lock_reservation
from gql_inventory.stock.reservations import end_reservation

#: pg advisory lock key of the sweeper ("gqlinv-expiry" folded into a bigint).
SWEEPER_LOCK_KEY = 0x67716C696E765F65


@dataclass
class SweepResult:
    """What one sweep did. `skipped_lock` when another sweeper held the lock.

    `failed` maps the id of each reservation that could not expire to its error
    (``"ExceptionType: message"``); those stay ACTIVE and are retried next sweep.
    """

    expired: list[uuid.UUID] = field(default_factory=list)
    cancelled_orders: list[uuid.UUID] = field(default_factory=list)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)
    skipped_lock: bool = False

    @property
    def processed(self) -> int:
        """Reservations this sweep tried to expire (expired + failed)."""
        return len(self.expired) + len(self.failed)


def _describe(exc: BaseException) -> str:
    """``"ExceptionType: first line of its message"`` (SQLAlchemy appends the SQL below)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _is_due(reservation: Reservation, now: datetime, max_age: timedelta | None) -> bool:
    if reservation.status is not ReservationStatus.ACTIVE:
        return False
    if reservation.expires_at <= now:
        return True
    return max_age is not None and reservation.created_at <= now - max_age


async def due_reservations(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    limit: int = 500,
    max_age: timedelta | None = None,
) -> list[uuid.UUID]:
    """Ids of ACTIVE reservations whose expiry has passed, oldest expiry first.

    With `max_age`, also those created at least `max_age` ago whatever their expiry
    (`expire-reservations --max-age-minutes`).
    """
    now = now or datetime.now(UTC)
    due = Reservation.expires_at <= now
    if max_age is not None:
        due = or_(due, Reservation.created_at <= now - max_age)
    rows = await session.execute(
        select(Reservation.id)
        .where(Reservation.status == ReservationStatus.ACTIVE, due)
        .order_by(Reservation.expires_at)
        .limit(limit)
    )
    return [r[0] for r in rows]


async def expire_reservations(
    uow: UnitOfWork,
    *,
    now: datetime | None = None,
    limit: int = 500,
    max_age: timedelta | None = None,
) -> SweepResult:
    """Expire up to `limit` due reservations (see `due_reservations`) in the caller's
    transaction, each in its own savepoint: one that fails is rolled back alone and
    reported in `SweepResult.failed`.

    Takes the sweeper advisory lock for the transaction (`pg_try_advisory_xact_lock`);
    when another sweeper holds it, returns at once with `skipped_lock`. A
    reservation locked by a concurrent payment is skipped (`SKIP LOCKED`) and
    taken by the next sweep if still due.
    """
    session = uow.session
    result = SweepResult()
    got = (
        await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SWEEPER_LOCK_KEY})
    ).scalar_one()
    if not got:
        result.skipped_lock = True
        return result
    now = now or datetime.now(UTC)
    batch: list[Reservation] = []
    for reservation_id in await due_reservations(session, now=now, limit=limit, max_age=max_age):
        reservation = await lock_reservation(session, reservation_id, skip_locked=True)
        if reservation is None:
            continue
        await session.refresh(reservation)
        if not _is_due(reservation, now, max_age):
            continue
        batch.append(reservation)
    # One sweep ends many reservations in one transaction: lock all their levels first, in
    # ascending id order (the global lock order). Locking them reservation by reservation
    # would hold one's levels while waiting for the next one's, and deadlock with a cart
    # that locks the same levels in id order.
    if batch:
        await lock_levels_held_by(session, [r.id for r in batch])
    for reservation in batch:
        reservation_id = reservation.id
        mark = uow.mark()  # rewound if this reservation's savepoint rolls back, so
        # nothing rolled back is published or cancelled after the commit
        try:
            async with session.begin_nested():
                await end_reservation(
                    uow,
                    reservation,
                    status=ReservationStatus.EXPIRED,
                    kind=MovementKind.EXPIRY,
                )
                order_id = await cancel_pending_order_of(
                    uow, reservation_id, reason="reservation expired"
                )
                await session.flush()  # ORM-side changes of this reservation, in its savepoint
        except Exception as exc:  # isolated: only this reservation's savepoint rolled back
            uow.rewind(mark)
            result.failed[reservation_id] = _describe(exc)
            continue
        result.expired.append(reservation_id)
        if order_id is not None:
            result.cancelled_orders.append(order_id)
    return result
