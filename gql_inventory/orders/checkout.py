"""Checkout: an ACTIVE reservation becomes an order (PENDING_PAYMENT) with a payment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import (
    InvalidInput,
    InvalidOrderState,
    PaymentProviderError,
    in_input,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import (
    Order,
    OrderLine,
    OrderStatus,
    PaymentEventKind,
    Reservation,
    ReservationLine,
    Variant,
)
from gql_inventory.orders.orders import (
    now,
    order_id_for,
    record_payment_event,
)
from gql_inventory.payments.base import PaymentProvider, PaymentRequest, ProviderFailure
from gql_inventory.stock.locks import ensure_active, lock_reservation


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """The order made at checkout and the client secret to confirm its payment with."""

    order_id: uuid.UUID
    client_secret: str | None


async def checkout(
    uow: UnitOfWork,
    reservation_id: uuid.UUID,
    *,
    provider: PaymentProvider,
    email: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
    payment_window_seconds: int = 900,
) -> CheckoutResult:
    """Turn an ACTIVE reservation into an order (PENDING_PAYMENT) with a payment.

    Unit prices are frozen now; the total is in the currency's minor units. A
    second checkout of the same reservation returns the same pending order.
    The reservation stays ACTIVE (its units stay reserved) until the payment
    succeeds, is cancelled, or the reservation expires; making the order extends
    its expiry to at least the database's now + `payment_window_seconds`, so a cart
    checked out near the end of its TTL still leaves the buyer the whole window.

    Raises `ReservationNotFound`, `ReservationNotActive`, `InvalidOrderState` (its
    order is past PENDING_PAYMENT, e.g. NEEDS_ATTENTION), `InvalidInput` (lines
    in several currencies), `IdempotencyConflict`, `PaymentProviderError`.
    """
    session = uow.session
    field = in_input("reservation_id")
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
        ensure_active(reservation, now(), field=field)
        result = CheckoutResult(order_id=order_id, client_secret=existing.payment_client_secret)
    elif existing is not None:  # e.g. NEEDS_ATTENTION (amount mismatch) on an ACTIVE reservation
        ensure_active(reservation, now(), field=field)
        raise InvalidOrderState(existing.status.value, "check out", field=field)
    else:
        ensure_active(reservation, now(), field=field)
        await _hold_for_payment(session, reservation, payment_window_seconds)
        result = await _create_order(session, reservation, order_id, provider, email)
        uow.orders_changed.append(order_id)  # a new PENDING_PAYMENT order (ordersChanged)
    if idempotency_key is not None:
        await idempotency.record(
            session, scope="checkout", key=idempotency_key, result={"order_id": str(order_id)}
        )
    return result


_HOLD_FOR_PAYMENT = text(
    """
    UPDATE reservations
       SET expires_at = GREATEST(expires_at, now() + make_interval(secs => :window)),
           updated_at = now()
     WHERE id = :id
    RETURNING expires_at
    """
)


async def _hold_for_payment(
    session: AsyncSession, reservation: Reservation, window_seconds: int
) -> None:
    """Hold a locked ACTIVE reservation until at least now + `window_seconds` (seconds).

    `now()` is the transaction's start on the database clock, the same instant the
    order's `created_at` gets: the window is counted from checkout, never shortened.
    """
    expires_at = (
        await session.execute(_HOLD_FOR_PAYMENT, {"id": reservation.id, "window": window_seconds})
    ).scalar_one()
    reservation.expires_at = expires_at


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
            field=in_input("reservation_id"),
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
        raise PaymentProviderError(exc.message, field=in_input("reservation_id")) from exc
    await session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(
            payment_intent_id=payment.payment_intent_id,
            payment_client_secret=payment.client_secret,
        )
    )
    await record_payment_event(
        session, order_id, PaymentEventKind.PAYMENT_INTENT_CREATED, detail=payment.payment_intent_id
    )
    return CheckoutResult(order_id=order_id, client_secret=payment.client_secret)
