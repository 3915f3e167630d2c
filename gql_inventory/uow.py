"""Unit of work: one transaction per mutation, events published only after it commits."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.inventory.ledger import PENDING_EVENTS_KEY, AppliedMovement
from gql_inventory.inventory.orders import PENDING_ORDER_CHANGES_KEY
from gql_inventory.services import Services

T = TypeVar("T")


async def run_in_transaction(services: Services, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction; commit, then publish the stock movements it wrote
    (and the orders whose status it changed).

    Any exception (a `DomainError` included) rolls everything back, and then
    nothing is published (DESIGN.md invariant 3).
    """
    async with services.sessions() as session:
        async with session.begin():
            result = await work(session)
        movements: list[AppliedMovement] = session.info.pop(PENDING_EVENTS_KEY, [])
        orders_changed: list[uuid.UUID] = session.info.pop(PENDING_ORDER_CHANGES_KEY, [])
    if movements:
        await services.events.publish(movements)
    if orders_changed:
        await services.events.publish_order_changes(orders_changed)
    return result
