"""Back-office lists (admin): orders newest first, reservations soonest expiry first.

Their fields declare the `IsAdmin` permission (`schema.query`). Each page is one SQL
statement (`orders.lists`); the rows prime the request's DataLoaders, and
nested fields (lines, variants, reservation, payment events) load in batches.
"""

from __future__ import annotations

from datetime import datetime

from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.live.cursors import encode_keyset_cursor
from gql_inventory.orders.lists import Keyset, order_page, reservation_page
from gql_inventory.resolvers.cursors import decode_keyset_cursor
from gql_inventory.schema.connections import (
    OrderConnection,
    OrderEdge,
    ReservationConnection,
    ReservationEdge,
    cursor_page,
)
from gql_inventory.schema.enums import OrderStatus, ReservationStatus
from gql_inventory.schema.errors import BadRequest
from gql_inventory.schema.orders import OrderType, ReservationType

#: Largest `first` of `orders` and `reservations`; beyond it, BAD_USER_INPUT.
MAX_LIST_PAGE = 250
DEFAULT_LIST_PAGE = 50


def list_page_size(first: int | None) -> int:
    """`first` of a back-office list (null: 50); outside 0..250 a BAD_USER_INPUT error."""
    first = DEFAULT_LIST_PAGE if first is None else first
    if not 0 <= first <= MAX_LIST_PAGE:
        raise BadRequest(f"first must be between 0 and {MAX_LIST_PAGE}")
    return first


def _after(kind: str, after: str | None) -> Keyset | None:
    if after is None:
        return None
    at, row_id = decode_keyset_cursor(kind, after)
    return Keyset(at=at, id=row_id)


async def orders(
    info: Info[Context, None],
    status: list[OrderStatus] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    first: int | None = DEFAULT_LIST_PAGE,
    after: str | None = None,
) -> OrderConnection:
    """Orders newest first, filtered by status and creation time (exclusive bounds)."""
    size, start = list_page_size(first), _after("order", after)
    async with info.context.engine.connect() as conn:
        page = await order_page(
            conn,
            first=size,
            after=start,
            statuses=None if status is None else [s.value for s in status],
            created_after=created_after,
            created_before=created_before,
        )
    for row in page.rows:
        info.context.loaders.orders.order_by_id.prime(row["id"], row)
    edges, page_info = cursor_page(
        page.rows,
        cursor=lambda row: encode_keyset_cursor("order", row["created_at"], row["id"]),
        node=OrderType.from_row,
        edge=OrderEdge,
        has_next_page=page.has_next_page,
        after_given=start is not None,
    )
    return OrderConnection(edges=edges, page_info=page_info, total_count=page.total_count)


async def reservations(
    info: Info[Context, None],
    status: list[ReservationStatus] | None = None,
    expires_before: datetime | None = None,
    sku: str | None = None,
    first: int | None = DEFAULT_LIST_PAGE,
    after: str | None = None,
) -> ReservationConnection:
    """Reservations soonest expiry first, filtered by status, expiry (exclusive) and SKU."""
    size, start = list_page_size(first), _after("reservation", after)
    async with info.context.engine.connect() as conn:
        page = await reservation_page(
            conn,
            first=size,
            after=start,
            statuses=None if status is None else [s.value for s in status],
            expires_before=expires_before,
            sku=sku,
        )
    for row in page.rows:
        info.context.loaders.orders.reservation_by_id.prime(row["id"], row)
    edges, page_info = cursor_page(
        page.rows,
        cursor=lambda row: encode_keyset_cursor("reservation", row["expires_at"], row["id"]),
        node=ReservationType.from_row,
        edge=ReservationEdge,
        has_next_page=page.has_next_page,
        after_given=start is not None,
    )
    return ReservationConnection(edges=edges, page_info=page_info, total_count=page.total_count)
