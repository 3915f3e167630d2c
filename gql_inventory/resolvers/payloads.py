"""Loading payload objects after the transaction committed (fresh rows, fresh versions)."""

from __future__ import annotations

import uuid

from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.schema.catalog import StockLevelType
from gql_inventory.schema.orders import OrderType, ReservationType


async def reservation_payload(
    info: Info[Context, None], reservation_id: uuid.UUID
) -> ReservationType:
    """The reservation as committed."""
    row = await info.context.loaders.orders.reservation_by_id.load(reservation_id)
    if row is None:  # pragma: no cover - it was just written
        raise LookupError(f"reservation {reservation_id} vanished")
    return ReservationType.from_row(row)


async def order_payload(info: Info[Context, None], order_id: uuid.UUID) -> OrderType:
    """The order as committed."""
    row = await info.context.loaders.orders.order_by_id.load(order_id)
    if row is None:  # pragma: no cover - it was just written
        raise LookupError(f"order {order_id} vanished")
    return OrderType.from_row(row)


async def level_payload(info: Info[Context, None], level_id: int) -> StockLevelType:
    """The stock level as committed."""
    row = await info.context.loaders.level_by_id.load(level_id)
    if row is None:  # pragma: no cover
        raise LookupError(f"stock level {level_id} vanished")
    return StockLevelType.from_row(row)
