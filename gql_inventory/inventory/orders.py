"""Orders: checkout, payment outcomes (what the webhook calls), refunds and cancellation.

Lock order: reservation, then order, then stock levels by id (as in
`reservations`). Payment outcomes are safe to call twice and in any order:
each looks at the locked order's status and does nothing when the work is done.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.inventory import idempotency
from gql_inventory.inventory.errors import (
    DomainError,
    InvalidInput,
    InvalidOrderState,
    OrderNotFound,
    PaymentProviderError,
    RefundExceedsQuantity,
    raise_all,
)
from gql_inventory.inventory.ledger import apply_movement
from gql_inventory.inventory.reservations import (
    end_reservation,
    ensure_active,
    lock_reservation,
)
from gql_inventory.inventory.stock import LineRequest, LockedLevel, allocate, lock_levels
from gql_inventory.models import (
    MovementKind,
    Order,
    OrderAllocation,
    OrderLine,
    OrderStatus,
    PaymentEvent,
    Refund,
    Reservation,
    ReservationLine,
    ReservationStatus,
    Variant,
)
from gql_inventory.payments.base import PaymentProvider, PaymentRequest, ProviderFailure

#: Namespace of order ids: an order's id is uuid5(ORDER_NAMESPACE, reservation id), so a
#: retried checkout of the same reservation reaches the provider with the same idempotency key.
ORDER_NAMESPACE = uuid.UUID("6f1d2c1e-5b7a-4e8e-9a55-2f0c7d9b1a01")

REFUNDABLE = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)

#: Key in `AsyncSession.info` under which ids of orders whose status changed wait for
#: the commit; `gql_inventory.uow` then announces them (`orderStatusChanged`).
PENDING_ORDER_CHANGES_KEY = "gql_inventory.pending_order_changes"


def order_id_for(reservation_id: uuid.UUID) -> uuid.UUID:
    """The id the order of a reservation gets (deterministic, see `ORDER_NAMESPACE`)."""
    return uuid.uuid5(ORDER_NAMESPACE, str(reservation_id))


def parse_order_id(raw: str, *, field: Sequence[str] = ("input", "orderId")) -> uuid.UUID:
    """An order id as issued (a UUID). Anything else is `OrderNotFound`."""
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise OrderNotFound("no such order", field=list(field)) from exc


def order_reference(order_id: uuid.UUID) -> str:
    """Ledger `reference` of an order's movements."""
    return f"order:{order_id}"


def _now() -> datetime:
    return datetime.now(UTC)


async def record_payment_event(
    session: AsyncSession,
    order_id: uuid.UUID,
    type_: str,
    *,
    provider_event_id: str | None = None,
    detail: str | None = None,
) -> None:
    """Append to the order's payment history (shown to admins as `Order.paymentEvents`)."""
    await session.execute(
        insert(PaymentEvent).values(
            order_id=order_id, type=type_, provider_event_id=provider_event_id, detail=detail
        )
    )


async def _set_status(
    session: AsyncSession, order: Order, status: OrderStatus, **values: object
) -> None:
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(status=status, updated_at=func.now(), **values)
    )
    order.status = status
    session.info.setdefault(PENDING_ORDER_CHANGES_KEY, []).append(order.id)


async def lock_order(
    session: AsyncSession, order_id: uuid.UUID, *, field: Sequence[str] = ("input", "orderId")
) -> tuple[Reservation | None, Order]:
    """Lock an order's reservation, then the order itself (the domain's lock order).

    Raises `OrderNotFound`.
    """
    reservation_id = (
        await session.execute(select(Order.reservation_id).where(Order.id == order_id))
    ).first()
    if reservation_id is None:
        raise OrderNotFound("no such order", field=list(field))
    reservation = None
    if reservation_id[0] is not None:
        reservation = await lock_reservation(session, reservation_id[0])
    order = (
        await session.execute(select(Order).where(Order.id == order_id).with_for_update())
    ).scalar_one()
    return reservation, order


# ---------------------------------------------------------------- checkout


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """The order made at checkout and the client secret to confirm its payment with."""

    order_id: uuid.UUID
    client_secret: str | None


async def checkout(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    *,
    provider: PaymentProvider,
    email: str | None = None,
    idempotency_key: str | None = None,
) -> CheckoutResult:
    """Turn an ACTIVE reservation into an order (PENDING_PAYMENT) with a payment.

    Unit prices are frozen now; the total is in the currency's minor units. A
    second checkout of the same reservation returns the same pending order.
    The reservation stays ACTIVE (its units stay reserved) until the payment
    succeeds, is cancelled, or the reservation expires.

    Raises `ReservationNotFound`, `ReservationNotActive`, `InvalidOrderState` (its
    order is past PENDING_PAYMENT, e.g. NEEDS_ATTENTION), `InvalidInput` (lines
    in several currencies), `IdempotencyConflict`, `PaymentProviderError`.
    """
    field = ["input", "reservationId"]
    reservation = await lock_reservation(session, reservation_id, field=field)
    assert reservation is not None
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope="checkout",
            key=idempotency_key,
            payload={"reservation_id": str(reservation_id), "email": email},
        )
        if replay is not None:
            secret = (
                await session.execute(
                    select(Order.payment_client_secret).where(
                        Order.id == uuid.UUID(replay["order_id"])
                    )
                )
            ).scalar_one()
            return CheckoutResult(order_id=uuid.UUID(replay["order_id"]), client_secret=secret)
    order_id = order_id_for(reservation_id)
    existing = (
        await session.execute(select(Order).where(Order.id == order_id).with_for_update())
    ).scalar_one_or_none()
    if existing is not None and existing.status is OrderStatus.PENDING_PAYMENT:
        ensure_active(reservation, _now(), field=field)
        result = CheckoutResult(order_id=order_id, client_secret=existing.payment_client_secret)
    elif existing is not None:  # e.g. NEEDS_ATTENTION (amount mismatch) on an ACTIVE reservation
        ensure_active(reservation, _now(), field=field)
        raise InvalidOrderState(existing.status.value, "check out", field=field)
    else:
        ensure_active(reservation, _now(), field=field)
        result = await _create_order(session, reservation, order_id, provider, email)
    if idempotency_key is not None:
        await idempotency.record(
            session, scope="checkout", key=idempotency_key, result={"order_id": str(order_id)}
        )
    return result


async def _create_order(
    session: AsyncSession,
    reservation: Reservation,
    order_id: uuid.UUID,
    provider: PaymentProvider,
    email: str | None,
) -> CheckoutResult:
    rows = (
        await session.execute(
            select(
                ReservationLine.variant_id,
                func.sum(ReservationLine.quantity).label("quantity"),
                Variant.price_amount,
                Variant.currency_code,
            )
            .join(Variant, Variant.id == ReservationLine.variant_id)
            .where(ReservationLine.reservation_id == reservation.id)
            .group_by(ReservationLine.variant_id, Variant.price_amount, Variant.currency_code)
            .order_by(ReservationLine.variant_id)
        )
    ).all()
    currencies = {r.currency_code for r in rows}
    if len(currencies) != 1:
        raise InvalidInput(
            "a reservation's lines must share one currency to check out",
            field=["input", "reservationId"],
        )
    currency = currencies.pop()
    total = sum(int(r.quantity) * int(r.price_amount) for r in rows)
    await session.execute(
        insert(Order).values(
            id=order_id,
            reservation_id=reservation.id,
            status=OrderStatus.PENDING_PAYMENT,
            email=email,
            currency_code=currency,
            total_amount=total,
            payment_provider=provider.name,
        )
    )
    await session.execute(
        insert(OrderLine),
        [
            {
                "order_id": order_id,
                "variant_id": r.variant_id,
                "quantity": int(r.quantity),
                "unit_price_amount": int(r.price_amount),
                "currency_code": r.currency_code,
            }
            for r in rows
        ],
    )
    try:
        payment = await provider.create_payment(
            PaymentRequest(
                order_id=order_id,
                reservation_id=reservation.id,
                amount=total,
                currency=currency,
                email=email,
            )
        )
    except ProviderFailure as exc:
        raise PaymentProviderError(exc.message, field=["input", "reservationId"]) from exc
    await session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(
            payment_intent_id=payment.payment_intent_id,
            payment_client_secret=payment.client_secret,
        )
    )
    await record_payment_event(
        session, order_id, "payment_intent.created", detail=payment.payment_intent_id
    )
    return CheckoutResult(order_id=order_id, client_secret=payment.client_secret)


# ---------------------------------------------------------------- payment outcomes


async def payment_succeeded(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    reference: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
) -> str:
    """The payment of an order succeeded: sell its units (SALE) exactly once.

    Returns an outcome word: ``sold``, ``sold_late`` (its reservation had ended:
    units re-taken from what is available), ``needs_attention`` (too few units
    left after a late payment; nothing goes below zero), ``amount_mismatch``,
    or ``already_paid``. `amount` (minor units) and `currency`, when given,
    must match the order. Raises `OrderNotFound`.
    """
    reservation, order = await lock_order(session, order_id)
    if order.status in (*REFUNDABLE, OrderStatus.REFUNDED, OrderStatus.NEEDS_ATTENTION):
        return "already_paid"
    if order.status is OrderStatus.CANCELLED and await payment_applied(session, order.id):
        return "already_paid"
    if (amount is not None and amount != order.total_amount) or (
        currency is not None and currency.upper() != order.currency_code.upper()
    ):
        await _set_status(
            session,
            order,
            OrderStatus.NEEDS_ATTENTION,
            attention_reason=f"paid {amount} {currency}, order total {order.total_amount} "
            f"{order.currency_code}",
        )
        await record_payment_event(
            session, order.id, "amount_mismatch", provider_event_id=reference
        )
        return "amount_mismatch"
    if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
        await _sell_reserved(session, order, reservation)
        outcome = "sold"
    else:
        if not await _sell_late(session, order):
            await record_payment_event(
                session, order.id, "late_payment_out_of_stock", provider_event_id=reference
            )
            return "needs_attention"
        outcome = "sold_late"
    await _set_status(session, order, OrderStatus.PAID)
    await record_payment_event(
        session, order.id, "payment_intent.succeeded", provider_event_id=reference
    )
    return outcome


async def _was_sold(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """True when units of the order were ever sold (it has allocations)."""
    found = await session.execute(
        select(OrderAllocation.id)
        .join(OrderLine, OrderLine.id == OrderAllocation.order_line_id)
        .where(OrderLine.order_id == order_id)
        .limit(1)
    )
    return found.first() is not None


#: Payment events that mean a payment of the order was received and applied.
PAYMENT_APPLIED_EVENTS = (
    "payment_intent.succeeded",
    "amount_mismatch",
    "late_payment_out_of_stock",
)


async def payment_applied(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """True when a payment of the order was applied: units sold, or the order flagged
    (amount mismatch, late payment without stock) and possibly cancelled since."""
    if await _was_sold(session, order_id):
        return True
    found = await session.execute(
        select(PaymentEvent.id)
        .where(PaymentEvent.order_id == order_id, PaymentEvent.type.in_(PAYMENT_APPLIED_EVENTS))
        .limit(1)
    )
    return found.first() is not None


async def _sell_reserved(session: AsyncSession, order: Order, reservation: Reservation) -> None:
    """SALE every reserved unit (on hand and reserved both drop) and close the reservation."""
    held = (
        await session.execute(
            select(
                ReservationLine.stock_level_id, ReservationLine.variant_id, ReservationLine.quantity
            )
            .where(ReservationLine.reservation_id == reservation.id)
            .order_by(ReservationLine.stock_level_id)
        )
    ).all()
    lines = await _order_line_ids(session, order.id)
    for level_id, variant_id, quantity in held:
        movement = await apply_movement(
            session,
            level_id=level_id,
            kind=MovementKind.SALE,
            on_hand_delta=-quantity,
            reserved_delta=-quantity,
            reference=order_reference(order.id),
        )
        if movement is None:
            raise RuntimeError(f"level {level_id} cannot sell {quantity} reserved units")
        await session.execute(
            insert(OrderAllocation).values(
                order_line_id=lines[variant_id], stock_level_id=level_id, quantity=quantity
            )
        )
    await session.execute(
        update(Reservation)
        .where(Reservation.id == reservation.id)
        .values(status=ReservationStatus.COMPLETED, updated_at=func.now())
    )
    reservation.status = ReservationStatus.COMPLETED


async def _order_line_ids(session: AsyncSession, order_id: uuid.UUID) -> dict[int, int]:
    rows = await session.execute(
        select(OrderLine.variant_id, OrderLine.id).where(OrderLine.order_id == order_id)
    )
    return {int(r.variant_id): int(r.id) for r in rows}


async def _sell_late(session: AsyncSession, order: Order) -> bool:
    """Sell a paid order whose reservation had ended, from available stock, or flag it.

    All lines or none: when any line is short the order becomes NEEDS_ATTENTION
    and no level changes.
    """
    lines = (
        await session.execute(
            select(OrderLine.id, OrderLine.variant_id, OrderLine.quantity).where(
                OrderLine.order_id == order.id
            )
        )
    ).all()
    levels = await lock_levels(session, [line.variant_id for line in lines])
    per_variant: dict[int, list[LockedLevel]] = defaultdict(list)
    for level in levels:
        per_variant[level.variant_id].append(level)
    plans: list[tuple[int, LockedLevel, int]] = []
    short: list[str] = []
    for line in lines:
        plan = allocate(per_variant[line.variant_id], line.quantity)
        if plan is None:
            short.append(str(line.variant_id))
            continue
        plans.extend((line.id, level, units) for level, units in plan)
    if short:
        await _set_status(
            session,
            order,
            OrderStatus.NEEDS_ATTENTION,
            attention_reason="paid after its reservation ended; not enough stock for variants "
            + ", ".join(short),
        )
        return False
    for line_id, level, units in sorted(plans, key=lambda p: p[1].id):
        movement = await apply_movement(
            session,
            level_id=level.id,
            kind=MovementKind.SALE,
            on_hand_delta=-units,
            reference=order_reference(order.id),
            reason="late payment",
        )
        if movement is None:
            raise RuntimeError(f"level {level.id} refused a planned late sale")
        await session.execute(
            insert(OrderAllocation).values(
                order_line_id=line_id, stock_level_id=level.id, quantity=units
            )
        )
    return True


async def payment_failed(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    error: str | None,
    reference: str | None = None,
) -> str:
    """A payment attempt failed (e.g. card declined): record it, keep the reservation.

    The buyer may retry on the same PaymentIntent; the reservation ends by
    success, cancel or expiry. Returns ``recorded``. Raises `OrderNotFound`.
    """
    _, order = await lock_order(session, order_id)
    if order.status is OrderStatus.PENDING_PAYMENT:
        await session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(last_payment_error=error, updated_at=func.now())
        )
    await record_payment_event(
        session,
        order.id,
        "payment_intent.payment_failed",
        provider_event_id=reference,
        detail=error,
    )
    return "recorded"


async def payment_canceled(
    session: AsyncSession, order_id: uuid.UUID, *, reference: str | None = None
) -> str:
    """The payment was cancelled: release the reservation (RELEASE), order CANCELLED.

    Does nothing to a paid order (a succeeded payment cannot be cancelled).
    Returns ``cancelled`` or ``ignored``. Raises `OrderNotFound`.
    """
    reservation, order = await lock_order(session, order_id)
    if order.status is not OrderStatus.PENDING_PAYMENT:
        return "ignored"
    if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
        await end_reservation(
            session, reservation, status=ReservationStatus.RELEASED, kind=MovementKind.RELEASE
        )
    await _set_status(session, order, OrderStatus.CANCELLED)
    await record_payment_event(
        session, order.id, "payment_intent.canceled", provider_event_id=reference
    )
    return "cancelled"


async def cancel_pending_order_of(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    *,
    reason: str,
    provider: PaymentProvider | None = None,
) -> uuid.UUID | None:
    """Cancel the PENDING_PAYMENT order of a reservation that just ended, if any.

    The caller holds the reservation's lock. Cancels its payment at the provider
    when one is given (a failure there is recorded, not raised: the stock is
    already released and a late payment is handled on arrival).
    """
    order = (
        await session.execute(
            select(Order).where(Order.reservation_id == reservation_id).with_for_update()
        )
    ).scalar_one_or_none()
    if order is None or order.status is not OrderStatus.PENDING_PAYMENT:
        return None
    await _set_status(session, order, OrderStatus.CANCELLED)
    detail = reason
    if provider is not None and order.payment_intent_id:
        try:
            await provider.cancel_payment(order.payment_intent_id)
        except ProviderFailure as exc:
            detail = f"{reason}; provider cancel failed: {exc.message}"
    await record_payment_event(session, order.id, "order.cancelled", detail=detail)
    return order.id


# ---------------------------------------------------------------- refunds and cancellation


async def refund_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    provider: PaymentProvider,
    lines: Sequence[LineRequest] | None = None,
    restock: bool = True,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """Refund some or all units of a paid order; with `restock`, put them back (RETURN).

    `lines` null refunds everything not refunded yet. Units return to the
    levels they were sold from. The provider refunds the lines' value (minor
    units) first; its failure changes nothing here.

    Raises `OrderNotFound`, `InvalidOrderState`, `UnknownSku`/`RefundExceedsQuantity`,
    `InvalidInput`, `IdempotencyConflict`, `PaymentProviderError`.
    """
    _, order = await lock_order(session, order_id)
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope="refundOrder",
            key=idempotency_key,
            payload={
                "order_id": str(order_id),
                "lines": None if lines is None else sorted((ln.sku, ln.quantity) for ln in lines),
                "restock": restock,
                "reason": reason,
            },
        )
        if replay is not None:
            return order_id
    if order.status not in REFUNDABLE:
        raise InvalidOrderState(order.status.value, "refund", field=["input", "orderId"])
    quantities = await _refund_quantities(session, order, lines)
    await _refund(session, order, quantities, provider=provider, restock=restock, reason=reason)
    if idempotency_key is not None:
        await idempotency.record(
            session, scope="refundOrder", key=idempotency_key, result={"order_id": str(order_id)}
        )
    return order_id


@dataclass(frozen=True, slots=True)
class _RefundLine:
    line_id: int
    variant_id: int
    quantity: int
    unit_price_amount: int


async def _refund_quantities(
    session: AsyncSession, order: Order, lines: Sequence[LineRequest] | None
) -> list[_RefundLine]:
    rows = (
        await session.execute(
            select(
                OrderLine.id,
                OrderLine.variant_id,
                OrderLine.quantity,
                OrderLine.refunded_quantity,
                OrderLine.unit_price_amount,
                Variant.sku,
            )
            .join(Variant, Variant.id == OrderLine.variant_id)
            .where(OrderLine.order_id == order.id)
            .order_by(OrderLine.id)
        )
    ).all()
    by_sku = {r.sku: r for r in rows}
    if lines is None:
        return [
            _RefundLine(r.id, r.variant_id, r.quantity - r.refunded_quantity, r.unit_price_amount)
            for r in rows
            if r.quantity > r.refunded_quantity
        ]
    errors: list[DomainError] = []
    wanted: dict[str, int] = {}
    if not lines:
        raise InvalidInput("at least one line is required", field=["input", "lines"])
    for i, line in enumerate(lines):
        if line.quantity < 1:
            errors.append(
                InvalidInput(
                    "quantity must be at least 1", field=["input", "lines", str(i), "quantity"]
                )
            )
            continue
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        row = by_sku.get(line.sku)
        refundable = 0 if row is None else row.quantity - row.refunded_quantity
        if wanted[line.sku] > refundable:
            errors.append(
                RefundExceedsQuantity(
                    sku=line.sku,
                    requested=wanted[line.sku],
                    refundable=refundable,
                    field=["input", "lines", str(i), "quantity"],
                )
            )
    raise_all(errors)
    return [
        _RefundLine(by_sku[sku].id, by_sku[sku].variant_id, qty, by_sku[sku].unit_price_amount)
        for sku, qty in wanted.items()
    ]


async def _refund(
    session: AsyncSession,
    order: Order,
    lines: list[_RefundLine],
    *,
    provider: PaymentProvider,
    restock: bool,
    reason: str | None,
) -> None:
    if not lines:
        raise InvalidOrderState(order.status.value, "refund (nothing left to refund)")
    amount = sum(line.quantity * line.unit_price_amount for line in lines)
    refund_count = (
        await session.execute(
            select(func.count()).select_from(Refund).where(Refund.order_id == order.id)
        )
    ).scalar_one()
    provider_refund_id = None
    status = "succeeded"
    if order.payment_intent_id and amount > 0:
        try:
            refund = await provider.refund(
                order.payment_intent_id,
                amount=amount,
                idempotency_key=f"refund:{order.id}:{refund_count + 1}",
            )
        except ProviderFailure as exc:
            raise PaymentProviderError(exc.message, field=["input", "orderId"]) from exc
        provider_refund_id, status = refund.refund_id, refund.status
    await session.execute(
        insert(Refund).values(
            order_id=order.id,
            provider_refund_id=provider_refund_id,
            amount=amount,
            currency_code=order.currency_code,
            status=status,
            lines=[{"variant_id": ln.variant_id, "quantity": ln.quantity} for ln in lines],
            restocked=restock,
            reason=reason,
        )
    )
    for line in lines:
        await session.execute(
            update(OrderLine)
            .where(OrderLine.id == line.line_id)
            .values(refunded_quantity=OrderLine.refunded_quantity + line.quantity)
        )
    if restock:
        await _restock(session, order.id, lines, reason=reason)
    remaining = (
        await session.execute(
            select(
                func.coalesce(func.sum(OrderLine.quantity - OrderLine.refunded_quantity), 0)
            ).where(OrderLine.order_id == order.id)
        )
    ).scalar_one()
    status_after = OrderStatus.REFUNDED if remaining == 0 else OrderStatus.PARTIALLY_REFUNDED
    await _set_status(session, order, status_after)
    await record_payment_event(
        session, order.id, "refund.created", provider_event_id=provider_refund_id, detail=reason
    )


_ALLOCATIONS = text(
    """
    SELECT id, stock_level_id, quantity - returned_quantity AS returnable
      FROM order_allocations
     WHERE order_line_id = :line_id AND quantity > returned_quantity
     ORDER BY stock_level_id
       FOR UPDATE
    """
)


async def _restock(
    session: AsyncSession, order_id: uuid.UUID, lines: list[_RefundLine], *, reason: str | None
) -> None:
    """Return refunded units to the levels they were sold from (RETURN), by level id."""
    returns: dict[int, int] = defaultdict(int)
    for line in lines:
        remaining = line.quantity
        for alloc in (await session.execute(_ALLOCATIONS, {"line_id": line.line_id})).all():
            if remaining == 0:
                break
            take = min(int(alloc.returnable), remaining)
            await session.execute(
                update(OrderAllocation)
                .where(OrderAllocation.id == alloc.id)
                .values(returned_quantity=OrderAllocation.returned_quantity + take)
            )
            returns[int(alloc.stock_level_id)] += take
            remaining -= take
    for level_id in sorted(returns):
        movement = await apply_movement(
            session,
            level_id=level_id,
            kind=MovementKind.RETURN,
            on_hand_delta=returns[level_id],
            reference=order_reference(order_id),
            reason=reason,
        )
        if movement is None:  # pragma: no cover - adding on hand cannot break a constraint
            raise RuntimeError(f"level {level_id} refused a return")


async def cancel_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    provider: PaymentProvider,
    reason: str | None = None,
) -> uuid.UUID:
    """Cancel an order: pending ones release their stock and payment; paid ones are
    refunded in full with restock; NEEDS_ATTENTION ones are refunded without restock
    (their units were never taken) and release a still ACTIVE reservation. The order
    ends CANCELLED.

    Raises `OrderNotFound`, `InvalidOrderState` (already cancelled or refunded),
    `PaymentProviderError`.
    """
    reservation, order = await lock_order(session, order_id)
    if order.status is OrderStatus.PENDING_PAYMENT:
        if order.payment_intent_id:
            try:
                await provider.cancel_payment(order.payment_intent_id)
            except ProviderFailure as exc:
                raise PaymentProviderError(exc.message, field=["input", "orderId"]) from exc
        if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
            await end_reservation(
                session, reservation, status=ReservationStatus.RELEASED, kind=MovementKind.RELEASE
            )
    elif order.status in REFUNDABLE:
        lines = await _refund_quantities(session, order, None)
        await _refund(session, order, lines, provider=provider, restock=True, reason=reason)
    elif order.status is OrderStatus.NEEDS_ATTENTION:
        if order.payment_intent_id and order.total_amount > 0:
            try:
                await provider.refund(
                    order.payment_intent_id,
                    amount=order.total_amount,
                    idempotency_key=f"cancel:{order.id}",
                )
            except ProviderFailure as exc:
                raise PaymentProviderError(exc.message, field=["input", "orderId"]) from exc
        if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
            # amount mismatch: its units are still held; nothing will pay for them now
            await end_reservation(
                session, reservation, status=ReservationStatus.RELEASED, kind=MovementKind.RELEASE
            )
    else:
        raise InvalidOrderState(order.status.value, "cancel", field=["input", "orderId"])
    await _set_status(session, order, OrderStatus.CANCELLED)
    await record_payment_event(session, order.id, "order.cancelled", detail=reason)
    return order.id
