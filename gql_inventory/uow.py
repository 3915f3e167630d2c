"""Unit of work: one transaction per mutation, events published only after it commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.outbound.events import write_events
from gql_inventory.services import Services

log = get_logger(__name__)

T = TypeVar("T")


async def run_in_transaction(
    services: Services, work: Callable[[UnitOfWork], Awaitable[T]], *, actor: str
) -> T:
    """Run `work` in one transaction with a fresh `UnitOfWork` acting for `actor` (who
    causes it, written on every ledger row: ``admin:<name>``, ``storefront``, ``stripe``,
    ``system`` or ``import``, see `domain.uow`); write its outbox events in it
    (`outbound.events.write_events`, the function the reserve group commit calls too);
    commit, then announce what it did
    through `Services.after_commit` (the one after-commit function, shared with the
    reserve group commit): publish its movements and changed orders, log its
    NEEDS_ATTENTION orders, cancel the payments of orders it cancelled, and read a
    catalog change back (`uow.catalog_changed`) in this process.

    Any exception (a `DomainError` included) rolls everything back, and then
    nothing is announced (DESIGN.md invariant 3).
    """
    async with services.sessions() as session:
        uow = UnitOfWork(session, actor=actor)
        try:
            async with session.begin():
                result = await work(uow)
                if uow.movements or uow.happened:
                    connection = await session.connection()
                    raw = await connection.get_raw_connection()
                    await write_events(raw.driver_connection, uow, services.email_routing)
        except DomainError as error:
            metrics.count_refusal(error)
            raise
    await services.after_commit(uow)
    return result
