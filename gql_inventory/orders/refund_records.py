"""Refund rows and the units they give back: the one place a refund is written.

Every refund (`refundOrder`, `cancelOrder`, one reported by the provider) is a
`refunds` row (`add_refund`); the units it covers are counted on the order lines,
listed on the row and, when restocked, returned (RETURN) to the levels they were sold
from (`refund_units`). `record_refund` does both for a refund whose units are known
when it is made. Amounts are minor units of the order's currency.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, insert, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import (
    MovementKind,
    Order,
    OrderAllocation,
    OrderLine,
    Refund,
    RefundSource,
    RefundStatus,
)
from gql_inventory.orders.orders import order_reference
from gql_inventory.orders.payment_states import FAILED_REFUND_STATUSES
from gql_inventory.stock.backorders import fill_backorders, lock_levels_of_order, release_waiting
from gql_inventory.stock.ledger import apply_movement


@dataclass(frozen=True, slots=True)
class RefundLine:
    """Units of one order line to refund; `unit_price_amount` in minor units."""

    line_id: int
    variant_id: int
    quantity: int
    unit_price_amount: int


async def add_refund(
    session: AsyncSession,
    order: Order,
    *,
    source: RefundSource,
    amount: int,
    status: RefundStatus,
    provider_refund_id: str | None = None,
    reason: str | None = None,
) -> int:
    """Insert a refund of `amount` minor units of the order, with no units yet; its id.

    An UNATTRIBUTED refund has no `provider_refund_id`, a DASHBOARD one has one (the
    table's checks; one UNATTRIBUTED row per order). Raises `IntegrityError` otherwise.
    """
    inserted = await session.execute(
        insert(Refund)
        .values(
            order_id=order.id,
            provider_refund_id=provider_refund_id,
            amount=amount,
            currency_code=order.currency_code,
            status=status,
            source=source,
            lines=[],
            restocked=False,
            reason=reason,
        )
        .returning(Refund.id)
    )
    return int(inserted.scalar_one())


async def refund_units(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    refund_id: int,
    lines: Sequence[RefundLine],
    *,
    restock: bool,
    reason: str | None,
) -> None:
    """Count `lines` as refunded by the refund row `refund_id`.

    The order lines' `refunded_quantity` grows, the refund row lists the units (and is
    marked `restocked` when `restock`). Units still waiting for stock (backorders) are
    refunded first: they are given up (`backorders.release_waiting`), never restocked;
    with `restock` the rest go back on hand where they were sold from (`restock_units`),
    and backorders waiting there are filled from them. Nothing happens for no lines.
    """
    if not lines:
        return
    session = uow.session
    await lock_levels_of_order(session, order_id)  # levels before allocations (ADR 0018)
    released = await release_waiting(
        uow, order_id, {line.line_id: line.quantity for line in lines}, reason=reason
    )
    for line in lines:
        await session.execute(
            update(OrderLine)
            .where(OrderLine.id == line.line_id)
            .values(refunded_quantity=OrderLine.refunded_quantity + line.quantity)
        )
    listed = [{"variant_id": ln.variant_id, "quantity": ln.quantity} for ln in lines]
    values: dict[str, object] = {"lines": Refund.lines.op("||")(type_coerce(listed, JSONB))}
    if restock:
        values["restocked"] = True
    await session.execute(update(Refund).where(Refund.id == refund_id).values(**values))
    if restock:
        sold = [replace(ln, quantity=ln.quantity - released.get(ln.line_id, 0)) for ln in lines]
        await restock_units(uow, order_id, [ln for ln in sold if ln.quantity], reason=reason)


async def record_refund(
    uow: UnitOfWork,
    order: Order,
    lines: Sequence[RefundLine],
    *,
    source: RefundSource,
    amount: int,
    status: RefundStatus,
    provider_refund_id: str | None,
    restock: bool,
    reason: str | None,
) -> int:
    """A refund whose units are known when it is made: `add_refund`, then `refund_units`.

    Returns the refund row's id.
    """
    refund_id = await add_refund(
        uow.session,
        order,
        source=source,
        amount=amount,
        status=status,
        provider_refund_id=provider_refund_id,
        reason=reason,
    )
    await refund_units(uow, order.id, refund_id, lines, restock=restock, reason=reason)
    return refund_id


async def refunded_amount(session: AsyncSession, order_id: uuid.UUID) -> int:
    """Minor units refunded on the order, refunds that failed or were canceled left out."""
    total = (
        await session.execute(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.order_id == order_id, Refund.status.not_in(FAILED_REFUND_STATUSES)
            )
        )
    ).scalar_one()
    return int(total)


_ALLOCATIONS = text(
    """
    SELECT id, stock_level_id, quantity - returned_quantity AS returnable
      FROM order_allocations
     WHERE order_line_id = :line_id AND quantity > returned_quantity
     ORDER BY stock_level_id
       FOR UPDATE
    """
)


async def restock_units(
    uow: UnitOfWork, order_id: uuid.UUID, lines: Sequence[RefundLine], *, reason: str | None
) -> None:
    """Return refunded units to the levels they were sold from (RETURN), by level id, then
    fill backorders waiting there (`backorders.fill_backorders`)."""
    session = uow.session
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
            uow,
            level_id=level_id,
            kind=MovementKind.RETURN,
            on_hand_delta=returns[level_id],
            reference=order_reference(order_id),
            reason=reason,
        )
        if movement is None:  # pragma: no cover - adding on hand cannot break a constraint
            raise RuntimeError(f"level {level_id} refused a return")
    await fill_backorders(uow, returns)
