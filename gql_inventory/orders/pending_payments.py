"""The pending-payment check's domain side: which orders to ask the provider about, and
applying what the provider says exactly as the webhook would.

A webhook can be missed (endpoint down longer than Stripe retries, a misconfigured
secret, an event deleted). Then a paid order stays PENDING_PAYMENT, its reservation
expires, and the money is taken for nothing. The check (`gql_inventory.jobs.payment_check`)
retrieves such payments and calls the same domain functions the webhook calls
(`payment_outcomes`, `provider_events`).

Deduplication with the webhook: the webhook dedups redeliveries by Stripe event id;
the check has no event id, so both rely on what every outcome function already does:
it locks the reservation and the order (the domain's lock order) and decides from
the locked order's state. Whichever of the check and the webhook commits first sells;
the other finds the order PAID (or flagged) and changes nothing (``already_paid``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Order, OrderStatus, PaymentEvent
from gql_inventory.orders.orders import defer_payment_cancel, lock_order, record_payment_event
from gql_inventory.orders.payment_outcomes import payment_canceled, payment_succeeded
from gql_inventory.orders.payment_progress import payment_in_progress
from gql_inventory.orders.payment_states import Outcome, PaymentEventKind
from gql_inventory.payments.base import PaymentState

#: PaymentIntent statuses under which the buyer is still paying: the reservation is held
#: longer, as for the webhook event of the same name.
IN_PROGRESS = {
    "processing": PaymentEventKind.PAYMENT_INTENT_PROCESSING,
    "requires_action": PaymentEventKind.PAYMENT_INTENT_REQUIRES_ACTION,
}


@dataclass(frozen=True, slots=True)
class PendingPayment:
    """An order whose payment outcome never arrived. `status` is the order's status:
    PENDING_PAYMENT, or CANCELLED when its reservation ended and cancelling the payment
    at the provider failed (the buyer may have paid meanwhile)."""

    order_id: uuid.UUID
    payment_intent_id: str
    status: OrderStatus
    created_at: datetime


def _has_event(*types: PaymentEventKind) -> ColumnElement[bool]:
    return exists().where(PaymentEvent.order_id == Order.id, PaymentEvent.type.in_(types))


async def pending_payments(
    session: AsyncSession, *, min_age: timedelta, limit: int = 200
) -> list[PendingPayment]:
    """Orders to ask the provider about, oldest first, at most `limit`.

    - PENDING_PAYMENT orders made at least `min_age` ago (database clock);
    - CANCELLED orders whose payment cancel failed at the provider and whose payment
      was neither applied nor since confirmed canceled.
    """
    stranded = and_(
        Order.status == OrderStatus.CANCELLED,
        Order.payment_applied_at.is_(None),
        _has_event(PaymentEventKind.PAYMENT_INTENT_CANCEL_FAILED),
        ~_has_event(
            PaymentEventKind.PAYMENT_INTENT_CANCELED,
            PaymentEventKind.PAYMENT_CHECK_CANCEL_CONFIRMED,
        ),
    )
    pending = and_(
        Order.status == OrderStatus.PENDING_PAYMENT,
        Order.created_at <= func.now() - min_age,
    )
    rows = await session.execute(
        select(Order.id, Order.payment_intent_id, Order.status, Order.created_at)
        .where(Order.payment_intent_id.is_not(None), or_(pending, stranded))
        .order_by(Order.created_at)
        .limit(limit)
    )
    return [
        PendingPayment(
            order_id=r.id,
            payment_intent_id=str(r.payment_intent_id),
            status=r.status,
            created_at=r.created_at,
        )
        for r in rows
    ]


def planned_action(state: PaymentState | None) -> str:
    """What `apply_payment_state` would do for this provider state (for ``--dry-run``)."""
    if state is None:
        return "nothing: the provider cannot tell (offline payment)"
    if state.status == "succeeded":
        return "apply payment_intent.succeeded (sell, or flag when the stock is gone)"
    if state.status == "canceled":
        return "apply payment_intent.canceled (release the stock, cancel the order)"
    if state.status in IN_PROGRESS:
        return f"apply payment_intent.{state.status} (hold the stock longer)"
    return "nothing: the buyer has not paid yet"


async def apply_payment_state(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    state: PaymentState,
    *,
    hold_seconds: int,
    max_hold_seconds: int,
) -> Outcome:
    """Apply the provider's current state of the order's payment, as the webhook would.

    ``succeeded``: `payment_succeeded` with the amount received (outcomes ``sold``,
    ``sold_late``, ``needs_attention``, ``amount_mismatch``, ``already_paid``);
    ``canceled``: `payment_canceled` (``cancelled``; on an order already cancelled
    ``cancel_confirmed``); ``processing`` / ``requires_action``: `payment_in_progress`
    (``extended``, ``unchanged``, ``ignored``); anything else: ``still_pending`` (on a
    cancelled order the provider cancel is retried after commit: ``cancel_retried``).
    ``order_mismatch`` when the payment is not this order's. Each outcome but
    ``still_pending`` is recorded as a ``payment_check`` payment event. Raises
    `OrderNotFound`.
    """
    session = uow.session
    _, order = await lock_order(session, order_id)
    if state.payment_intent_id != order.payment_intent_id or state.order_id not in (
        None,
        str(order.id),
    ):
        outcome = Outcome.ORDER_MISMATCH
    elif state.status == "succeeded":
        outcome = await payment_succeeded(
            uow,
            order.id,
            amount=state.amount_received or state.amount,
            currency=state.currency,
        )
    elif state.status == "canceled":
        outcome = await payment_canceled(uow, order.id)
        if outcome is Outcome.IGNORED and order.status is OrderStatus.CANCELLED:
            await record_payment_event(
                session,
                order.id,
                PaymentEventKind.PAYMENT_CHECK_CANCEL_CONFIRMED,
                detail=state.payment_intent_id,
            )
            outcome = Outcome.CANCEL_CONFIRMED
    elif state.status in IN_PROGRESS:
        outcome = await payment_in_progress(
            session,
            order.id,
            kind=IN_PROGRESS[state.status],
            hold_seconds=hold_seconds,
            max_hold_seconds=max_hold_seconds,
        )
    elif order.status is OrderStatus.CANCELLED and order.payment_intent_id:
        defer_payment_cancel(uow, order.id, order.payment_intent_id)
        outcome = Outcome.CANCEL_RETRIED
    else:
        return Outcome.STILL_PENDING
    await record_payment_event(
        session,
        order.id,
        PaymentEventKind.PAYMENT_CHECK,
        detail=f"{state.payment_intent_id} {state.status} -> {outcome}",
    )
    return outcome
