"""A payment in progress at the provider (bank payment processing, 3-D Secure): the
order's reservation is held longer so the stock is still there when the payment lands."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import OrderStatus, ReservationStatus
from gql_inventory.orders.orders import lock_order, record_payment_event
from gql_inventory.orders.payment_states import Outcome, PaymentEventKind
from gql_inventory.stock.reservations import extend_for_payment


async def payment_in_progress(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    kind: PaymentEventKind,
    hold_seconds: int,
    max_hold_seconds: int,
    reference: str | None = None,
) -> Outcome:
    """The buyer is paying (bank payment processing, 3-D Secure): keep the stock longer.

    The order's ACTIVE reservation is held until now + `hold_seconds`, never more than
    `max_hold_seconds` after checkout (`reservations.extend_for_payment`). Returns
    ``extended``, ``unchanged`` (already held that long, or capped) or ``ignored`` (the
    order is no longer pending or its reservation has ended: a late success is handled
    on arrival). Raises `OrderNotFound`.
    """
    reservation, order = await lock_order(session, order_id)
    if (
        order.status is not OrderStatus.PENDING_PAYMENT
        or reservation is None
        or reservation.status is not ReservationStatus.ACTIVE
    ):
        await record_payment_event(
            session,
            order.id,
            kind,
            provider_event_id=reference,
            detail=f"stock not held: order {order.status.value}",
        )
        return Outcome.IGNORED
    before = reservation.expires_at
    until = await extend_for_payment(
        session,
        reservation,
        hold_seconds=hold_seconds,
        not_after=order.created_at + timedelta(seconds=max_hold_seconds),
    )
    await record_payment_event(
        session,
        order.id,
        kind,
        provider_event_id=reference,
        detail=f"reservation held until {until.isoformat()}",
    )
    return Outcome.EXTENDED if until > before else Outcome.UNCHANGED
