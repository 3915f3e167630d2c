"""Payment outcomes: succeeded (SALE), failed, canceled; what the webhook calls.

Safe to call twice and in any order: each looks at the locked order's status and
does nothing when the work is done."""

from __future__ import annotations

import uuid

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import Happened, UnitOfWork
from gql_inventory.kit.money import format_money
from gql_inventory.models import (
    MovementKind,
    Order,
    OrderAllocation,
    OrderLine,
    OrderStatus,
    PaymentEventKind,
    Reservation,
    ReservationLine,
    ReservationStatus,
    Variant,
    WebhookTopic,
)
from gql_inventory.orders.orders import (
    REFUNDABLE,
    lock_order,
    order_reference,
    record_payment_event,
    set_status,
)
from gql_inventory.orders.payment_states import Outcome
from gql_inventory.stock.allocation import Take, plan_increase
from gql_inventory.stock.backorders import fill_backorders
from gql_inventory.stock.ledger import apply_movement, lock_levels_by_variant
from gql_inventory.stock.reservations import (
    end_reservation,
)

#: `orders.payment_applied_at` of a payment applied now (the transaction's time); a
#: time already set stays.
_APPLIED_NOW = func.coalesce(Order.payment_applied_at, func.now())


async def payment_succeeded(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    *,
    reference: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
) -> Outcome:
    """The payment of an order succeeded: sell its units (SALE) exactly once.

    Returns ``sold``, ``sold_late`` (its reservation had ended: units re-taken from
    what is available), ``needs_attention`` (too few units left after a late
    payment; nothing goes below zero), ``amount_mismatch``, or ``already_paid``.
    Every outcome but ``already_paid`` sets the order's `payment_applied_at`.
    `amount` (minor units) and `currency`, when given, must match the order.
    Raises `OrderNotFound`.
    """
    session = uow.session
    reservation, order = await lock_order(session, order_id)
    if order.status in (*REFUNDABLE, OrderStatus.REFUNDED, OrderStatus.NEEDS_ATTENTION):
        return Outcome.ALREADY_PAID
    if order.status is OrderStatus.CANCELLED and await payment_applied(session, order.id):
        return Outcome.ALREADY_PAID
    if (amount is not None and amount != order.total_amount) or (
        currency is not None and currency.upper() != order.currency_code.upper()
    ):
        await set_status(
            uow,
            order,
            OrderStatus.NEEDS_ATTENTION,
            attention_reason=_mismatch_reason(order, amount=amount, currency=currency),
            payment_applied_at=_APPLIED_NOW,
        )
        await record_payment_event(
            session, order.id, PaymentEventKind.AMOUNT_MISMATCH, provider_event_id=reference
        )
        return Outcome.AMOUNT_MISMATCH
    waiting: list[int] | None
    if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
        waiting = await _sell_reserved(uow, order, reservation)
        outcome = Outcome.SOLD
    else:
        waiting = await _sell_late(uow, order)
        if waiting is None:
            await record_payment_event(
                session,
                order.id,
                PaymentEventKind.LATE_PAYMENT_OUT_OF_STOCK,
                provider_event_id=reference,
            )
            return Outcome.NEEDS_ATTENTION
        outcome = Outcome.SOLD_LATE
    await set_status(uow, order, OrderStatus.PAID, payment_applied_at=_APPLIED_NOW)
    await fill_backorders(uow, waiting)  # stock that came while it was a cart (ADR 0018)
    await record_payment_event(
        session, order.id, PaymentEventKind.PAYMENT_INTENT_SUCCEEDED, provider_event_id=reference
    )
    return outcome


def _mismatch_reason(order: Order, *, amount: int | None, currency: str | None) -> str:
    """``paid 1.00 USD, order total 59.50 USD``: what was paid (the order's amount or
    currency where the provider did not say) beside the order's total."""
    paid_currency = currency or order.currency_code
    paid = format_money(order.total_amount if amount is None else amount, paid_currency)
    return f"paid {paid}, order total {format_money(order.total_amount, order.currency_code)}"


async def payment_applied(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """True when a payment of the order was received and applied (`payment_applied_at`
    is set): units sold, or the order flagged (amount mismatch, late payment without
    stock), whatever its status since (refunded, cancelled)."""
    applied_at = (
        await session.execute(select(Order.payment_applied_at).where(Order.id == order_id))
    ).scalar_one_or_none()
    return applied_at is not None


async def _sell_reserved(uow: UnitOfWork, order: Order, reservation: Reservation) -> list[int]:
    """SALE every covered reserved unit (on hand and reserved both drop), move promised
    units from the reservation to the order (its allocation's `backordered_quantity`; the
    level's `backordered` is unchanged, ADR 0018) and close the reservation. Returns the
    ids of the levels where units now wait."""
    session = uow.session
    held = (
        await session.execute(
            select(
                ReservationLine.stock_level_id,
                ReservationLine.variant_id,
                ReservationLine.quantity,
                ReservationLine.backordered_quantity,
            )
            .where(ReservationLine.reservation_id == reservation.id)
            .order_by(ReservationLine.stock_level_id)
        )
    ).all()
    lines = await _order_line_ids(session, order.id)
    for level_id, variant_id, quantity, backordered in held:
        covered = quantity - backordered
        if covered:
            movement = await apply_movement(
                uow,
                level_id=level_id,
                kind=MovementKind.SALE,
                on_hand_delta=-covered,
                reserved_delta=-covered,
                reference=order_reference(order.id),
            )
            if movement is None:
                raise RuntimeError(f"level {level_id} cannot sell {covered} reserved units")
        await session.execute(
            insert(OrderAllocation).values(
                order_line_id=lines[variant_id],
                stock_level_id=level_id,
                quantity=covered,
                backordered_quantity=backordered,
            )
        )
    await session.execute(
        update(Reservation)
        .where(Reservation.id == reservation.id)
        .values(status=ReservationStatus.COMPLETED, updated_at=func.now())
    )
    reservation.status = ReservationStatus.COMPLETED
    return [level_id for level_id, _, _, backordered in held if backordered]


async def _order_line_ids(session: AsyncSession, order_id: uuid.UUID) -> dict[int, int]:
    rows = await session.execute(
        select(OrderLine.variant_id, OrderLine.id).where(OrderLine.order_id == order_id)
    )
    return {int(r.variant_id): int(r.id) for r in rows}


async def _sku(session: AsyncSession, variant_id: int) -> str:
    """The SKU of a variant (attention reasons name variants as operators know them)."""
    return str(
        (await session.execute(select(Variant.sku).where(Variant.id == variant_id))).scalar_one()
    )


async def _sell_late(uow: UnitOfWork, order: Order) -> list[int] | None:
    """Sell a paid order whose reservation had ended, from available stock (a variant
    selling past zero may backorder again, within its limit), or flag it.

    All lines or none: when any line is short the order becomes NEEDS_ATTENTION, no
    level changes and None is returned; else the ids of the levels where units wait.
    """
    session = uow.session
    lines = (
        await session.execute(
            select(OrderLine.id, OrderLine.variant_id, OrderLine.quantity)
            .where(OrderLine.order_id == order.id)
            .order_by(OrderLine.id)
        )
    ).all()
    per_variant = await lock_levels_by_variant(session, [line.variant_id for line in lines])
    plans: list[tuple[int, Take]] = []
    short: list[str] = []
    for index, line in enumerate(lines):
        levels = per_variant[line.variant_id]
        plan = plan_increase("", levels, line.quantity, index, enforce_limit=False)
        if not isinstance(plan, list):
            short.append(
                f"{await _sku(session, line.variant_id)} "
                f"({line.quantity} ordered, {plan.available} available)"
            )
            continue
        plans.extend((line.id, take) for take in plan)
    if short:
        await set_status(
            uow,
            order,
            OrderStatus.NEEDS_ATTENTION,
            attention_reason="paid after its reservation ended; not enough stock for "
            + ", ".join(short),
            payment_applied_at=_APPLIED_NOW,
        )
        return None
    for line_id, (level, units, backordered) in sorted(plans, key=lambda p: p[1][0].id):
        movement = await apply_movement(
            uow,
            level_id=level.id,
            kind=MovementKind.SALE,
            on_hand_delta=backordered - units,
            backordered_delta=backordered,
            reference=order_reference(order.id),
            reason="late payment",
        )
        if movement is None:
            raise RuntimeError(f"level {level.id} refused a planned late sale")
        await session.execute(
            insert(OrderAllocation).values(
                order_line_id=line_id,
                stock_level_id=level.id,
                quantity=units - backordered,
                backordered_quantity=backordered,
            )
        )
    return [take[0].id for _, take in plans if take[2]]


async def payment_failed(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    *,
    error: str | None,
    reference: str | None = None,
) -> Outcome:
    """A payment attempt failed (e.g. card declined): record it, keep the reservation.

    The buyer may retry on the same PaymentIntent; the reservation ends by
    success, cancel or expiry. An order still PENDING_PAYMENT keeps the `error` as its
    `last_payment_error` and gets a PAYMENT_FAILED outbox event (a failure reported after
    the order moved on is only recorded). Returns ``recorded``. Raises `OrderNotFound`.
    """
    session = uow.session
    _, order = await lock_order(session, order_id)
    if order.status is OrderStatus.PENDING_PAYMENT:
        await session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(last_payment_error=error, updated_at=func.now())
        )
        uow.happened.append(Happened(WebhookTopic.PAYMENT_FAILED, order.id))
    await record_payment_event(
        session,
        order.id,
        PaymentEventKind.PAYMENT_INTENT_PAYMENT_FAILED,
        provider_event_id=reference,
        detail=error,
    )
    return Outcome.RECORDED


async def payment_canceled(
    uow: UnitOfWork, order_id: uuid.UUID, *, reference: str | None = None
) -> Outcome:
    """The payment was canceled: release the reservation (RELEASE), order CANCELLED.

    Does nothing to a paid order (a succeeded payment cannot be cancelled).
    Returns ``cancelled`` or ``ignored``. Raises `OrderNotFound`.
    """
    session = uow.session
    reservation, order = await lock_order(session, order_id)
    if order.status is not OrderStatus.PENDING_PAYMENT:
        return Outcome.IGNORED
    if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
        await end_reservation(
            uow, reservation, status=ReservationStatus.RELEASED, kind=MovementKind.RELEASE
        )
    await set_status(uow, order, OrderStatus.CANCELLED)
    await record_payment_event(
        session, order.id, PaymentEventKind.PAYMENT_INTENT_CANCELED, provider_event_id=reference
    )
    return Outcome.CANCELLED
