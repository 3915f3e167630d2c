"""Orders: ids, locking, status and payment history shared by the order use cases.

The use cases live beside it: `checkout`, `payment_outcomes` (what the webhook
calls), `refunds` (refunds and cancellation). Lock order: reservation,
then order, then stock levels by id (as in `reservations`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.errors import (
    ORDER_ID,
    FieldPath,
    OrderNotFound,
)
from gql_inventory.domain.uow import Attention, Happened, PaymentCancel, UnitOfWork
from gql_inventory.models import (
    Order,
    OrderAllocation,
    OrderLine,
    OrderStatus,
    PaymentEvent,
    PaymentEventKind,
    Reservation,
    WebhookTopic,
)
from gql_inventory.stock.locks import lock_reservation

#: Namespace of order ids: an order's id is uuid5(ORDER_NAMESPACE, reservation id), so a
#: retried checkout of the same reservation reaches the provider with the same idempotency key.
ORDER_NAMESPACE = uuid.UUID("6f1d2c1e-5b7a-4e8e-9a55-2f0c7d9b1a01")

REFUNDABLE = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)

#: The outbox topic of an order entering each status (PENDING_PAYMENT: none, checkout).
STATUS_TOPICS = {
    OrderStatus.PAID: WebhookTopic.ORDER_PAID,
    OrderStatus.NEEDS_ATTENTION: WebhookTopic.ORDER_NEEDS_ATTENTION,
    OrderStatus.PARTIALLY_REFUNDED: WebhookTopic.ORDER_REFUNDED,
    OrderStatus.REFUNDED: WebhookTopic.ORDER_REFUNDED,
    OrderStatus.CANCELLED: WebhookTopic.ORDER_CANCELLED,
}


def order_id_for(reservation_id: uuid.UUID) -> uuid.UUID:
    """The id the order of a reservation gets (deterministic, see `ORDER_NAMESPACE`)."""
    return uuid.uuid5(ORDER_NAMESPACE, str(reservation_id))


def parse_order_id(raw: str, *, field: FieldPath = ORDER_ID) -> uuid.UUID:
    """An order id as issued (a UUID). Anything else is `OrderNotFound`."""
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise OrderNotFound("no such order", field=field) from exc


def order_reference(order_id: uuid.UUID) -> str:
    """Ledger `reference` of an order's movements."""
    return f"order:{order_id}"


def now() -> datetime:
    return datetime.now(UTC)


async def record_payment_event(
    session: AsyncSession,
    order_id: uuid.UUID,
    type_: PaymentEventKind,
    *,
    provider_event_id: str | None = None,
    detail: str | None = None,
) -> None:
    """Append to the order's payment history (shown to admins as `Order.paymentEvents`).

    `type_` is stored as its value (``payment_intent.succeeded``, ``order.cancelled``...).
    """
    await session.execute(
        insert(PaymentEvent).values(
            order_id=order_id, type=type_, provider_event_id=provider_event_id, detail=detail
        )
    )


async def set_status(uow: UnitOfWork, order: Order, status: OrderStatus, **values: object) -> None:
    """Set the locked order's status (and other columns); announced after the commit.

    An order becoming NEEDS_ATTENTION is also logged at WARNING after the commit. Each
    call is one outbox event of the status's topic (`STATUS_TOPICS`: ORDER_PAID,
    ORDER_NEEDS_ATTENTION, ORDER_REFUNDED for a partial or full refund, ORDER_CANCELLED).
    """
    session = uow.session
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(status=status, updated_at=func.now(), **values)
    )
    order.status = status
    uow.orders_changed.append(order.id)
    topic = STATUS_TOPICS.get(status)
    if topic is not None:
        uow.happened.append(Happened(topic, order.id))
    if status is OrderStatus.NEEDS_ATTENTION:
        reason = values.get("attention_reason")
        uow.attention.append(Attention(order.id, reason if isinstance(reason, str) else None))


async def lock_order(
    session: AsyncSession, order_id: uuid.UUID, *, field: FieldPath = ORDER_ID
) -> tuple[Reservation | None, Order]:
    """Lock an order's reservation, then the order itself (the domain's lock order).

    Raises `OrderNotFound`.
    """
    reservation_id = (
        await session.execute(select(Order.reservation_id).where(Order.id == order_id))
    ).first()
    if reservation_id is None:
        raise OrderNotFound("no such order", field=field)
    reservation = None
    if reservation_id[0] is not None:
        reservation = await lock_reservation(session, reservation_id[0])
    order = (
        await session.execute(select(Order).where(Order.id == order_id).with_for_update())
    ).scalar_one()
    return reservation, order


async def cancel_pending_order_of(
    uow: UnitOfWork,
    reservation_id: uuid.UUID,
    *,
    reason: str,
) -> uuid.UUID | None:
    """Cancel the PENDING_PAYMENT order of a reservation that just ended, if any.

    The caller holds the reservation's lock. Its payment is cancelled at the
    provider only after the commit (`defer_payment_cancel`): the transaction may
    hold stock-level locks, and a slow provider must not hold them. A failed or
    lost cancel is safe: a late payment is handled on arrival.
    """
    session = uow.session
    order = (
        await session.execute(
            select(Order).where(Order.reservation_id == reservation_id).with_for_update()
        )
    ).scalar_one_or_none()
    if order is None or order.status is not OrderStatus.PENDING_PAYMENT:
        return None
    await set_status(uow, order, OrderStatus.CANCELLED)
    if order.payment_intent_id:
        defer_payment_cancel(uow, order.id, order.payment_intent_id)
    await record_payment_event(session, order.id, PaymentEventKind.ORDER_CANCELLED, detail=reason)
    return order.id


def defer_payment_cancel(uow: UnitOfWork, order_id: uuid.UUID, payment_intent_id: str) -> None:
    """Ask for the payment to be cancelled at the provider once this transaction commits."""
    uow.payment_cancels.append(PaymentCancel(order_id, payment_intent_id))


async def was_sold(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """True when units of the order were ever sold (it has allocations)."""
    found = await session.execute(
        select(OrderAllocation.id)
        .join(OrderLine, OrderLine.id == OrderAllocation.order_line_id)
        .where(OrderLine.order_id == order_id)
        .limit(1)
    )
    return found.first() is not None
