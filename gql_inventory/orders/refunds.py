"""Refunds (RETURN when restocked) and cancellation of orders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import (
    DomainError,
    InvalidInput,
    InvalidOrderState,
    PaymentProviderError,
    RefundExceedsQuantity,
    in_input,
    raise_all,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import (
    MovementKind,
    Order,
    OrderLine,
    OrderStatus,
    PaymentEventKind,
    Refund,
    RefundSource,
    RefundStatus,
    ReservationStatus,
    Variant,
)
from gql_inventory.orders.orders import (
    REFUNDABLE,
    lock_order,
    record_payment_event,
    set_status,
    was_sold,
)
from gql_inventory.orders.refund_records import RefundLine, record_refund, refunded_amount
from gql_inventory.payments.base import PaymentProvider, ProviderFailure
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import (
    end_reservation,
)


async def refund_order(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    *,
    provider: PaymentProvider,
    lines: Sequence[LineRequest] | None = None,
    restock: bool = True,
    reason: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> uuid.UUID:
    """Refund some or all units of a paid order; with `restock`, put them back (RETURN).

    `lines` null refunds everything not refunded yet. Units return to the
    levels they were sold from. The provider refunds the lines' value (minor
    units) first; its failure changes nothing here.

    Raises `OrderNotFound`, `InvalidOrderState`, `UnknownSku`/`RefundExceedsQuantity`,
    `InvalidInput`, `IdempotencyConflict`, `PaymentProviderError`.
    """
    session = uow.session
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
        raise InvalidOrderState(order.status.value, "refund", field=in_input("order_id"))
    quantities = await refund_quantities(session, order, lines)
    await _refund(uow, order, quantities, provider=provider, restock=restock, reason=reason)
    if idempotency_key is not None:
        await idempotency.record(
            session, scope="refundOrder", key=idempotency_key, result={"order_id": str(order_id)}
        )
    return order_id


async def refund_quantities(
    session: AsyncSession, order: Order, lines: Sequence[LineRequest] | None
) -> list[RefundLine]:
    """The order lines and units `lines` asks to refund (None: every unit not refunded yet).

    Raises `InvalidInput` (no lines, a quantity below 1) and `RefundExceedsQuantity`
    (an unknown SKU, or more units than are left to refund), all at once.
    """
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
            RefundLine(r.id, r.variant_id, r.quantity - r.refunded_quantity, r.unit_price_amount)
            for r in rows
            if r.quantity > r.refunded_quantity
        ]
    errors: list[DomainError] = []
    wanted: dict[str, int] = {}
    if not lines:
        raise InvalidInput("at least one line is required", field=in_input("lines"))
    for i, line in enumerate(lines):
        if line.quantity < 1:
            errors.append(
                InvalidInput("quantity must be at least 1", field=in_input("lines", i, "quantity"))
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
                    field=in_input("lines", i, "quantity"),
                )
            )
    raise_all(errors)
    return [
        RefundLine(by_sku[sku].id, by_sku[sku].variant_id, qty, by_sku[sku].unit_price_amount)
        for sku, qty in wanted.items()
    ]


async def _refund(
    uow: UnitOfWork,
    order: Order,
    lines: list[RefundLine],
    *,
    provider: PaymentProvider,
    restock: bool,
    reason: str | None,
) -> None:
    session = uow.session
    if not lines:
        raise InvalidOrderState(order.status.value, "refund (nothing left to refund)")
    amount = sum(line.quantity * line.unit_price_amount for line in lines)
    refund_count = (
        await session.execute(
            select(func.count()).select_from(Refund).where(Refund.order_id == order.id)
        )
    ).scalar_one()
    provider_refund_id: str | None = None
    status = RefundStatus.SUCCEEDED
    if order.payment_intent_id and amount > 0:
        try:
            refund = await provider.refund(
                order.payment_intent_id,
                amount=amount,
                idempotency_key=f"refund:{order.id}:{refund_count + 1}",
            )
        except ProviderFailure as exc:
            raise PaymentProviderError(exc.message, field=in_input("order_id")) from exc
        provider_refund_id, status = refund.refund_id, refund.status
    await record_refund(
        uow,
        order,
        lines,
        source=RefundSource.OURS,
        amount=amount,
        status=status,
        provider_refund_id=provider_refund_id,
        restock=restock,
        reason=reason,
    )
    remaining = (
        await session.execute(
            select(
                func.coalesce(func.sum(OrderLine.quantity - OrderLine.refunded_quantity), 0)
            ).where(OrderLine.order_id == order.id)
        )
    ).scalar_one()
    status_after = OrderStatus.REFUNDED if remaining == 0 else OrderStatus.PARTIALLY_REFUNDED
    await set_status(uow, order, status_after)
    await record_payment_event(
        session,
        order.id,
        PaymentEventKind.REFUND_CREATED,
        provider_event_id=provider_refund_id,
        detail=reason,
    )


async def cancel_order(
    uow: UnitOfWork,
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
    session = uow.session
    reservation, order = await lock_order(session, order_id)
    if order.status is OrderStatus.PENDING_PAYMENT:
        if order.payment_intent_id:
            try:
                await provider.cancel_payment(order.payment_intent_id)
            except ProviderFailure as exc:
                raise PaymentProviderError(exc.message, field=in_input("order_id")) from exc
        if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
            await end_reservation(
                uow, reservation, status=ReservationStatus.RELEASED, kind=MovementKind.RELEASE
            )
    elif order.status in REFUNDABLE:
        lines = await refund_quantities(session, order, None)
        await _refund(uow, order, lines, provider=provider, restock=True, reason=reason)
    elif order.status is OrderStatus.NEEDS_ATTENTION:
        await _refund_all_left(uow, order, provider=provider, reason=reason)
        if reservation is not None and reservation.status is ReservationStatus.ACTIVE:
            # amount mismatch: its units are still held; nothing will pay for them now
            await end_reservation(
                uow, reservation, status=ReservationStatus.RELEASED, kind=MovementKind.RELEASE
            )
    else:
        raise InvalidOrderState(order.status.value, "cancel", field=in_input("order_id"))
    await set_status(uow, order, OrderStatus.CANCELLED)
    await record_payment_event(session, order.id, PaymentEventKind.ORDER_CANCELLED, detail=reason)
    return order.id


async def _refund_all_left(
    uow: UnitOfWork, order: Order, *, provider: PaymentProvider, reason: str | None
) -> None:
    """Cancel of a NEEDS_ATTENTION order: refund whatever money is left on its payment and,
    when its units were sold, put back those not refunded yet.

    The money left is not derived from the lines: such an order may have been paid a
    different amount (mismatch) or partly refunded elsewhere (the dashboard), so the
    provider is asked to refund everything not yet refunded (`amount=None`). It is
    skipped when our own records say nothing is left.
    """
    session = uow.session
    refunded = await refunded_amount(session, order.id)
    lines = (
        await refund_quantities(session, order, None) if await was_sold(session, order.id) else []
    )
    provider_refund_id: str | None = None
    status, amount = RefundStatus.SUCCEEDED, max(order.total_amount - refunded, 0)
    if order.payment_intent_id and amount > 0:
        try:
            refund = await provider.refund(
                order.payment_intent_id, amount=None, idempotency_key=f"cancel:{order.id}"
            )
        except ProviderFailure as exc:
            raise PaymentProviderError(exc.message, field=in_input("order_id")) from exc
        provider_refund_id, status = refund.refund_id, refund.status
        amount = refund.amount if refund.amount is not None else amount
    if amount == 0 and not lines:
        return
    await record_refund(
        uow,
        order,
        lines,
        source=RefundSource.OURS,
        amount=amount,
        status=status,
        provider_refund_id=provider_refund_id,
        restock=True,
        reason=reason,
    )
