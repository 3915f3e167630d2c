"""Is what the payment provider reports about an order possible, given the order?

A refund can only be of an order whose payment was applied, and cannot exceed what
was paid: the order's total (minor units; a payment of another amount was flagged
NEEDS_ATTENTION and never sold). An impossible report changes nothing: it is
recorded as an ``invalid_event`` payment event for admins and answered ``invalid``
(`Outcome.INVALID`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import Order, OrderStatus, Refund, RefundSource
from gql_inventory.orders.orders import REFUNDABLE, record_payment_event
from gql_inventory.orders.payment_outcomes import payment_applied
from gql_inventory.orders.payment_states import (
    FAILED_REFUND_STATUSES,
    Outcome,
    PaymentEventKind,
)


async def was_paid(session: AsyncSession, order: Order) -> bool:
    """True when a payment of the (locked) order was received and applied."""
    if order.status in (*REFUNDABLE, OrderStatus.REFUNDED):
        return True
    return await payment_applied(session, order.id)


async def refunded_by_id(session: AsyncSession, order: Order, *, besides: str | None) -> int:
    """Minor units refunded in refunds known by their provider id (not failed),
    leaving out the refund `besides` and the UNATTRIBUTED remainder row."""
    stmt = select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.order_id == order.id,
        Refund.status.not_in(FAILED_REFUND_STATUSES),
        Refund.source != RefundSource.UNATTRIBUTED,
        Refund.provider_refund_id.is_not(None),
    )
    if besides is not None:
        stmt = stmt.where(Refund.provider_refund_id != besides)
    return int((await session.execute(stmt)).scalar_one())


async def _recorded_amount(session: AsyncSession, order: Order, refund_id: str) -> int | None:
    stmt = select(Refund.amount).where(
        Refund.order_id == order.id, Refund.provider_refund_id == refund_id
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    return None if found is None else int(found)


async def impossible_refund(
    session: AsyncSession,
    order: Order,
    *,
    amount: int,
    refund_id: str | None = None,
    failed: bool = False,
) -> str | None:
    """Why a refund of `amount` minor units (one refund `refund_id`, or a charge's
    cumulative refunded total when None) of the locked order is impossible, or None.

    `failed`: the refund gave no money back. A refund already recorded on the order
    with this very amount is always possible (this service made it: `cancelOrder` of an
    over-paid order refunds more than the total).
    """
    if amount < 1:
        return f"refund amount {amount} is not positive"
    if not await was_paid(session, order):
        return f"refund of an order that was never paid (status {order.status.value})"
    if refund_id is not None and await _recorded_amount(session, order, refund_id) == amount:
        return None  # a refund this service made (e.g. all of an over-payment) or saw before
    if amount > order.total_amount:
        return f"refund of {amount} is more than the order total {order.total_amount}"
    if refund_id is not None and not failed:
        others = await refunded_by_id(session, order, besides=refund_id)
        if others + amount > order.total_amount:
            return (
                f"refunds would add up to {others + amount}, more than the order total "
                f"{order.total_amount}"
            )
    return None


async def impossible_charge_refund(
    session: AsyncSession,
    order: Order,
    *,
    amount_refunded: int,
    charge_amount: int | None,
    listed: Sequence[int] = (),
) -> str | None:
    """Why a charge's refunded total `amount_refunded` (with its listed refunds'
    amounts) is impossible for the locked order, or None.

    A charge says its payment succeeded, so an order whose payment was not applied
    yet is fine when the charge carries its captured `charge_amount` (the webhook
    applies the payment first); without it, it is a refund of an unpaid order.
    """
    if amount_refunded < 1:
        return f"refunded total {amount_refunded} is not positive"
    if charge_amount is not None and amount_refunded > charge_amount:
        return f"refunded total {amount_refunded} is more than the charge {charge_amount}"
    if charge_amount is None and not await was_paid(session, order):
        return f"refund of an order that was never paid (status {order.status.value})"
    if amount_refunded > order.total_amount:
        return f"refunded total {amount_refunded} is more than the order total {order.total_amount}"
    for amount in listed:
        if not 1 <= amount <= amount_refunded:
            return f"a listed refund of {amount} is outside the refunded total {amount_refunded}"
    return None


async def record_invalid(
    session: AsyncSession,
    order: Order,
    kind: PaymentEventKind,
    *,
    reference: str | None,
    problem: str,
) -> Outcome:
    """Record an impossible `kind` event on the order (an ``invalid_event`` payment
    event, never one that means a payment was applied); returns ``invalid``."""
    await record_payment_event(
        session,
        order.id,
        PaymentEventKind.INVALID_EVENT,
        provider_event_id=reference,
        detail=f"{kind}: {problem}",
    )
    return Outcome.INVALID
