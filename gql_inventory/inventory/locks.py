"""Row locks shared by the use cases (the domain's lock order starts with the reservation).

Lock order everywhere in the domain: reservation row, then order row, then stock
levels by ascending id.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.inventory.errors import RESERVATION_ID_ARGUMENT, FieldPath, ReservationNotFound
from gql_inventory.models import Reservation


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
