"""Unit of work: one transaction per mutation, events published only after it commits."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.orders.orders import record_payment_event
from gql_inventory.orders.payment_states import PaymentEventKind
from gql_inventory.payments.base import ProviderFailure
from gql_inventory.services import Services

log = get_logger(__name__)

T = TypeVar("T")


async def run_in_transaction(
    services: Services, work: Callable[[UnitOfWork], Awaitable[T]], *, actor: str
) -> T:
    """Run `work` in one transaction with a fresh `UnitOfWork` acting for `actor` (who
    causes it, written on every ledger row: ``admin:<name>``, ``storefront``, ``stripe``,
    ``system`` or ``import``, see `domain.uow`); commit, then publish the
    stock movements it wrote (`uow.movements`) and the orders whose status it changed
    (`uow.orders_changed`); orders it made NEEDS_ATTENTION (`uow.attention`) are logged
    at WARNING (``order.needs_attention`` with the order id and reason); a catalog change
    (`uow.catalog_changed`) is read back by this process (`refresh_catalog_after_commit`).

    Any exception (a `DomainError` included) rolls everything back, and then
    nothing is published (DESIGN.md invariant 3). Payments of orders the work
    cancelled (`uow.payment_cancels`) are cancelled at the provider after the
    commit, outside any lock.
    """
    async with services.sessions() as session:
        uow = UnitOfWork(session, actor=actor)
        try:
            async with session.begin():
                result = await work(uow)
        except DomainError as error:
            metrics.count_refusal(error)
            raise
    metrics.count_committed(uow)
    refresh_catalog_after_commit(services, uow)
    for order_id, reason in uow.attention:
        metrics.ORDERS_NEEDING_ATTENTION.inc()
        log.warning("order.needs_attention", order_id=str(order_id), reason=reason)
    for order_id, payment_intent_id in uow.payment_cancels:
        await _cancel_payment(services, order_id, payment_intent_id)
    if uow.movements:
        await services.events.publish(uow.movements)
    if uow.orders_changed:
        await services.events.publish_order_changes(uow.orders_changed)
    return result


def refresh_catalog_after_commit(services: Services, uow: UnitOfWork) -> None:
    """After the commit of `uow`: when it changed the catalog (`uow.catalog_changed`),
    this process's catalog reads go to the database until its snapshot has the change
    (read-your-writes; `readmodel.reads.ReadModel.catalog_changed`). Synchronous, so
    it runs before the caller's response is built."""
    live = services.live
    if uow.catalog_changed and live is not None and live.reads is not None:
        live.reads.catalog_changed()


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
                session, order_id, PaymentEventKind.PAYMENT_INTENT_CANCEL_FAILED, detail=exc.message
            )
