"""Unit of work: one transaction per mutation, events published only after it commits."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory import metrics
from gql_inventory.inventory.ledger import PENDING_EVENTS_KEY, AppliedMovement
from gql_inventory.inventory.orders import (
    PENDING_ATTENTION_KEY,
    PENDING_ORDER_CHANGES_KEY,
    PENDING_PAYMENT_CANCELS_KEY,
    record_payment_event,
)
from gql_inventory.logs import get_logger
from gql_inventory.payments.base import ProviderFailure
from gql_inventory.services import Services

log = get_logger(__name__)

T = TypeVar("T")


async def run_in_transaction(services: Services, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction; commit, then publish the stock movements it wrote
    (and the orders whose status it changed); orders it made NEEDS_ATTENTION are logged
    at WARNING (``order.needs_attention`` with the order id and reason).

    Any exception (a `DomainError` included) rolls everything back, and then
    nothing is published (DESIGN.md invariant 3). Payments of orders the work
    cancelled are cancelled at the provider after the commit, outside any lock.
    """
    async with services.sessions() as session:
        async with session.begin():
            result = await work(session)
        movements: list[AppliedMovement] = session.info.pop(PENDING_EVENTS_KEY, [])
        orders_changed: list[uuid.UUID] = session.info.pop(PENDING_ORDER_CHANGES_KEY, [])
        cancels: list[tuple[uuid.UUID, str]] = session.info.pop(PENDING_PAYMENT_CANCELS_KEY, [])
        attention: list[tuple[uuid.UUID, str | None]] = session.info.pop(PENDING_ATTENTION_KEY, [])
    for order_id, reason in attention:
        metrics.ORDERS_NEEDING_ATTENTION.inc()
        log.warning("order.needs_attention", order_id=str(order_id), reason=reason)
    for order_id, payment_intent_id in cancels:
        await _cancel_payment(services, order_id, payment_intent_id)
    if movements:
        await services.events.publish(movements)
    if orders_changed:
        await services.events.publish_order_changes(orders_changed)
    return result


async def _cancel_payment(services: Services, order_id: uuid.UUID, payment_intent_id: str) -> None:
    """Cancel a committed-cancelled order's payment; a failure is logged and recorded."""
    try:
        await services.payments.cancel_payment(payment_intent_id)
    except ProviderFailure as exc:
        log.warning(
            "payment.cancel_failed",
            order_id=str(order_id),
            payment_intent_id=payment_intent_id,
            error=exc.message,
        )
        async with services.sessions.begin() as session:
            await record_payment_event(
                session, order_id, "payment_intent.cancel_failed", detail=exc.message
            )
