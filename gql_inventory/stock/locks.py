"""Row locks and the ACTIVE check shared by the use cases.

Lock order everywhere in the domain: reservation row, then order row, then stock
levels by ascending id.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.errors import (
    RESERVATION_ID_ARGUMENT,
    FieldPath,
    ReservationNotActive,
    ReservationNotFound,
)
from gql_inventory.models import Reservation, ReservationStatus


async def lock_reservation(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    *,
    field: FieldPath = RESERVATION_ID_ARGUMENT,
    skip_locked: bool = False,
) -> Reservation | None:
    """Lock and return the reservation row (None when missing or, with `skip_locked`, busy).

    Raises `ReservationNotFound` when it does not exist and `skip_locked` is off.
    """
    stmt = select(Reservation).where(Reservation.id == reservation_id)
    stmt = stmt.with_for_update(skip_locked=skip_locked)
    reservation = (await session.execute(stmt)).scalar_one_or_none()
    if reservation is None and not skip_locked:
        raise ReservationNotFound("no such reservation", field=field)
    return reservation


def ensure_active(
    reservation: Reservation, now: datetime, *, field: FieldPath = RESERVATION_ID_ARGUMENT
) -> None:
    """Raise `ReservationNotActive` unless ACTIVE and not past its expiry."""
    if reservation.status is not ReservationStatus.ACTIVE:
        raise ReservationNotActive(reservation.status.value, field=field)
    if reservation.expires_at <= now:
        raise ReservationNotActive(ReservationStatus.EXPIRED.value, field=field)
