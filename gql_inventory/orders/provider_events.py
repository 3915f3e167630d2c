"""What the payment provider reports after checkout, beyond success/failure/cancel
(those are in `payment_outcomes`; a payment in progress is `payment_progress`): refunds
made at the provider.

The webhook turns provider events into these plain values; no provider SDK here.
Every function locks like the rest of the domain (reservation, order, levels by id),
is safe to call twice and in any order, and records a payment event for admins.

Refund rules. "Refunded at the provider" is the sum of the order's `refunds` rows
that did not fail or get canceled. Impossible reports (a refund of an unpaid order,
of more than was paid) change nothing and answer ``invalid`` (`event_checks`).

1. A refund this service made (`refundOrder`, `cancelOrder`) is known by its provider
   id in `refunds`; its units were restocked (or not, as the admin chose) when it was
   made. Its events only update its status, so the `charge.refunded` that follows a
   `refundOrder` never restocks a second time.
2. A refund made elsewhere (the Stripe dashboard, another API client) is recorded
   with no lines. Which units a partial refund covers cannot be known here, so:
   - when the payment is refunded in full (the provider says so, or the refunds add
     up to the order total), every unit not refunded yet is refunded and restocked to
     where it was sold from (units never sold, e.g. a late payment without stock,
     restock nothing) and the order becomes REFUNDED;
   - a partial refund moves no stock: the order becomes NEEDS_ATTENTION, the amount
     in its `attention_reason`, for an admin to restock returned units by hand. A
     later refund of the rest still restocks every unit not refunded.
3. A charge's refunded total (`charge.refunded` carries only the cumulative
   `amount_refunded`) may include refunds not yet seen by id: that part is kept on
   one UNATTRIBUTED refund row per order (`refunds.source`, no provider id), which a
   later refund event with the id takes over, so a refund seen both ways counts once.
4. A ``charge.refunded`` before the payment's success: the charge (with its captured
   amount) says the payment succeeded; the success is applied first (sell, or flag
   when the stock is gone). A refund event alone (no charge amount) on an order whose
   payment was never applied is impossible (`event_checks`): Stripe sends the
   ``charge.refunded`` of the same refund, which applies it.
5. A refund that fails or is canceled later only updates its status, recorded for
   admins: units already restocked stay restocked.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.money import format_money
from gql_inventory.models import (
    Order,
    OrderAllocation,
    OrderLine,
    OrderStatus,
    Refund,
)
from gql_inventory.orders.event_checks import (
    impossible_charge_refund,
    impossible_refund,
    record_invalid,
)
from gql_inventory.orders.orders import (
    REFUNDABLE,
    lock_order,
    record_payment_event,
    set_status,
)
from gql_inventory.orders.payment_outcomes import payment_applied, payment_succeeded
from gql_inventory.orders.payment_states import (
    FAILED_REFUND_STATUSES,
    Outcome,
    PaymentEventKind,
    RefundSource,
    RefundStatus,
)
from gql_inventory.orders.refund_records import add_refund, refund_units
from gql_inventory.orders.refunds import refund_quantities

#: `refunds.reason` of a refund made at the provider, outside this service.
EXTERNAL_REFUND = "refunded at the payment provider, outside this service"


@dataclass(frozen=True, slots=True)
class ReportedRefund:
    """A refund as the provider reports it; `amount` in minor units of `currency`."""

    refund_id: str
    amount: int
    currency: str
    status: RefundStatus


async def _reload(session: AsyncSession, order_id: uuid.UUID) -> Order:
    stmt = select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


# ---------------------------------------------------------------- refunds


async def _order_with_payment(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    *,
    amount: int | None,
    currency: str | None,
    reference: str | None,
) -> Order:
    """Lock the order; when its payment was never applied, apply it now (rule 4)."""
    session = uow.session
    _, order = await lock_order(session, order_id)
    unpaid = order.status is OrderStatus.PENDING_PAYMENT or (
        order.status is OrderStatus.CANCELLED and not await payment_applied(session, order.id)
    )
    if unpaid:
        await payment_succeeded(
            uow, order.id, reference=reference, amount=amount, currency=currency
        )
        order = await _reload(session, order.id)
    return order


async def _refund_row(session: AsyncSession, provider_refund_id: str) -> Refund | None:
    stmt = (
        select(Refund)
        .where(Refund.provider_refund_id == provider_refund_id)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _unattributed(session: AsyncSession, order: Order, *, create: bool) -> Refund | None:
    """The order's UNATTRIBUTED refund row (rule 3), made (amount 0) when `create`."""
    stmt = (
        select(Refund)
        .where(Refund.order_id == order.id, Refund.source == RefundSource.UNATTRIBUTED)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None and create:
        await add_refund(
            session,
            order,
            source=RefundSource.UNATTRIBUTED,
            amount=0,
            status=RefundStatus.SUCCEEDED,
            reason=f"{EXTERNAL_REFUND}; refund ids not reported yet",
        )
        row = (await session.execute(stmt)).scalar_one()
    return row


class _Noted(enum.Enum):
    """What `_note_refund` made of one reported refund."""

    KNOWN = enum.auto()  # seen before with this status
    UPDATED = enum.auto()  # seen before, its status changed
    FAILED = enum.auto()  # seen before, it failed (or was canceled) now
    NEW = enum.auto()  # first seen: recorded
    FAILED_UNKNOWN = enum.auto()  # first seen, failed: nothing was refunded
    OTHER_ORDER = enum.auto()  # the refund id belongs to another order


async def _note_refund(
    session: AsyncSession, order: Order, refund: ReportedRefund
) -> tuple[_Noted, Refund | None]:
    """Record what the provider says about one refund. Returns ``(what, row)``."""
    row = await _refund_row(session, refund.refund_id)
    if row is not None:
        if row.order_id != order.id:
            return _Noted.OTHER_ORDER, None
        if row.status == refund.status:
            return _Noted.KNOWN, row
        await session.execute(
            update(Refund).where(Refund.id == row.id).values(status=refund.status)
        )
        row.status = refund.status
        failed = refund.status in FAILED_REFUND_STATUSES
        return (_Noted.FAILED if failed else _Noted.UPDATED), row
    if refund.status in FAILED_REFUND_STATUSES:
        return _Noted.FAILED_UNKNOWN, None
    unattributed = await _unattributed(session, order, create=False)
    if unattributed is not None and unattributed.amount > 0:  # rule 3: take it over
        await session.execute(
            update(Refund)
            .where(Refund.id == unattributed.id)
            .values(amount=max(0, unattributed.amount - refund.amount))
        )
    await add_refund(
        session,
        order,
        source=RefundSource.DASHBOARD,
        amount=refund.amount,
        status=refund.status,
        provider_refund_id=refund.refund_id,
        reason=EXTERNAL_REFUND,
    )
    return _Noted.NEW, await _refund_row(session, refund.refund_id)


@dataclass(frozen=True, slots=True)
class _Totals:
    refunded: int  # at the provider, failed ones excluded
    identified: int  # of which refunds known by their id
    explained: int  # of which refunds whose lines were applied here


async def _totals(session: AsyncSession, order_id: uuid.UUID) -> _Totals:
    rows = (
        await session.execute(
            select(Refund.source, Refund.amount, Refund.lines).where(
                Refund.order_id == order_id,
                Refund.status.not_in(FAILED_REFUND_STATUSES),
            )
        )
    ).all()
    return _Totals(
        refunded=sum(int(r.amount) for r in rows),
        identified=sum(int(r.amount) for r in rows if r.source is not RefundSource.UNATTRIBUTED),
        explained=sum(int(r.amount) for r in rows if r.lines),
    )


async def _returnable_units(session: AsyncSession, order_id: uuid.UUID) -> int:
    """Units of the order sold and not returned yet."""
    total = (
        await session.execute(
            select(
                func.coalesce(
                    func.sum(OrderAllocation.quantity - OrderAllocation.returned_quantity), 0
                )
            )
            .join(OrderLine, OrderLine.id == OrderAllocation.order_line_id)
            .where(OrderLine.order_id == order_id)
        )
    ).scalar_one()
    return int(total)


async def _settle(
    uow: UnitOfWork,
    order: Order,
    *,
    fully_refunded: bool,
    row: Refund | None,
    reason: str,
) -> Outcome:
    """Apply rules 1 and 2 to what is now known to be refunded at the provider."""
    session = uow.session
    if order.status not in (*REFUNDABLE, OrderStatus.NEEDS_ATTENTION):
        return Outcome.RECORDED  # REFUNDED or CANCELLED: no unit left to give back
    totals = await _totals(session, order.id)
    if fully_refunded or totals.refunded >= order.total_amount:
        lines = await refund_quantities(session, order, None)
        returnable = await _returnable_units(session, order.id)
        if lines:
            target = row or await _unattributed(session, order, create=True)
            assert target is not None
            await refund_units(uow, order.id, target.id, lines, restock=True, reason=reason)
        await set_status(uow, order, OrderStatus.REFUNDED)
        restocked = returnable - await _returnable_units(session, order.id)
        return Outcome.RESTOCKED if restocked else Outcome.REFUNDED
    if totals.refunded > totals.explained:
        if order.status is not OrderStatus.NEEDS_ATTENTION:
            unexplained = totals.refunded - totals.explained
            await set_status(
                uow,
                order,
                OrderStatus.NEEDS_ATTENTION,
                attention_reason=f"{format_money(unexplained, order.currency_code)} "
                "refunded at the payment provider without saying which units: "
                "no stock was restocked; restock returned units by hand",
            )
        return Outcome.NEEDS_ATTENTION
    return Outcome.RECORDED


async def refund_reported(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    refund: ReportedRefund,
    *,
    kind: PaymentEventKind,
    reference: str | None = None,
) -> Outcome:
    """The provider reports one refund (created, updated, failed) of the order's payment.

    Returns ``restocked``, ``refunded`` (in full, nothing left to restock),
    ``needs_attention``, ``recorded``, ``refund_failed``, ``currency_mismatch``,
    ``order_mismatch`` (the refund id belongs to another order) or ``invalid`` (a
    refund of an unpaid order, or of more than was paid: `event_checks`; nothing
    changes). Raises `OrderNotFound`.
    """
    session = uow.session
    _, order = await lock_order(session, order_id)
    problem = await impossible_refund(
        session,
        order,
        amount=refund.amount,
        refund_id=refund.refund_id,
        failed=refund.status in FAILED_REFUND_STATUSES,
    )
    if problem is not None:
        return await record_invalid(session, order, kind, reference=reference, problem=problem)
    paid_back = format_money(refund.amount, refund.currency)
    head = f"refund {refund.refund_id} of {paid_back}: {refund.status}"
    if refund.currency.upper() != order.currency_code.upper():
        outcome = Outcome.CURRENCY_MISMATCH
    else:
        what, row = await _note_refund(session, order, refund)
        if what is _Noted.OTHER_ORDER:
            outcome = Outcome.ORDER_MISMATCH
        elif what in (_Noted.FAILED, _Noted.FAILED_UNKNOWN):
            outcome = Outcome.REFUND_FAILED
            if what is _Noted.FAILED and row is not None and row.restocked:
                head += "; its units were restocked and stay so"
        else:
            outcome = await _settle(
                uow, order, fully_refunded=False, row=row, reason=f"{kind} {reference}"
            )
    await record_payment_event(
        session, order.id, kind, provider_event_id=reference, detail=f"{head} -> {outcome}"
    )
    return outcome


async def charge_refunded(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    *,
    amount_refunded: int,
    fully_refunded: bool,
    charge_amount: int | None,
    currency: str,
    refunds: Sequence[ReportedRefund] = (),
    kind: PaymentEventKind = PaymentEventKind.CHARGE_REFUNDED,
    reference: str | None = None,
) -> Outcome:
    """The provider reports the refunded total of the order's charge (cumulative, minor
    units), with the refunds it lists, if any.

    Returns like `refund_reported`. Raises `OrderNotFound`.
    """
    session = uow.session
    _, order = await lock_order(session, order_id)
    problem = await impossible_charge_refund(
        session,
        order,
        amount_refunded=amount_refunded,
        charge_amount=charge_amount,
        listed=[r.amount for r in refunds],
    )
    if problem is not None:
        return await record_invalid(session, order, kind, reference=reference, problem=problem)
    order = await _order_with_payment(
        uow, order_id, amount=charge_amount, currency=currency, reference=reference
    )
    head = f"{format_money(amount_refunded, currency)} refunded" + (
        " (in full)" if fully_refunded else ""
    )
    if currency.upper() != order.currency_code.upper():
        outcome = Outcome.CURRENCY_MISMATCH
    else:
        for refund in refunds:
            await _note_refund(session, order, refund)
        totals = await _totals(session, order.id)
        unattributed = await _unattributed(session, order, create=False)
        known = unattributed.amount if unattributed is not None else 0
        wanted = max(known, amount_refunded - totals.identified)
        if wanted != known:
            unattributed = await _unattributed(session, order, create=True)
            assert unattributed is not None
            await session.execute(
                update(Refund).where(Refund.id == unattributed.id).values(amount=wanted)
            )
        outcome = await _settle(
            uow,
            order,
            fully_refunded=fully_refunded,
            row=None,
            reason=f"{kind} {reference}",
        )
    await record_payment_event(
        session, order.id, kind, provider_event_id=reference, detail=f"{head} -> {outcome}"
    )
    return outcome
