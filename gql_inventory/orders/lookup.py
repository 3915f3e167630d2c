"""Finding the order a payment provider's event is about."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import Order
from gql_inventory.orders.payment_states import Outcome


async def order_for_payment(
    session: AsyncSession, payment_intent_id: str | None, meta_order_id: uuid.UUID | None
) -> tuple[uuid.UUID | None, Outcome | None]:
    """The order an event names, or ``(None, why not)``.

    `payment_intent_id`: the PaymentIntent the event is about (``pi_...``);
    `meta_order_id`: the ``metadata.order_id`` we set on it, which Stripe echoes back.
    The PaymentIntent wins when it is known; when both name orders and they differ:
    ``order_mismatch``. Found by metadata only, the order's own PaymentIntent must be
    unset or equal: else ``payment_intent_mismatch``. Neither found: ``order_not_found``.
    """
    if payment_intent_id is not None:
        by_intent = (
            await session.execute(
                select(Order.id).where(Order.payment_intent_id == payment_intent_id)
            )
        ).scalar_one_or_none()
        if by_intent is not None:
            if meta_order_id is not None and meta_order_id != by_intent:
                return None, Outcome.ORDER_MISMATCH
            return by_intent, None
    if meta_order_id is None:
        return None, Outcome.ORDER_NOT_FOUND
    row = (
        await session.execute(
            select(Order.id, Order.payment_intent_id).where(Order.id == meta_order_id)
        )
    ).first()
    if row is None:
        return None, Outcome.ORDER_NOT_FOUND
    if payment_intent_id is not None and row.payment_intent_id not in (None, payment_intent_id):
        return None, Outcome.PAYMENT_INTENT_MISMATCH
    return meta_order_id, None
