"""The Subscription root: shapes here, logic in `gql_inventory.resolvers.live`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import strawberry

from gql_inventory.resolvers import live
from gql_inventory.resolvers.access import admin_only
from gql_inventory.schema.docs import with_arguments
from gql_inventory.schema.events import LowStockAlertType, StockChangeEventType
from gql_inventory.schema.orders import OrderType


@strawberry.type(
    description="Live events over the graphql-transport-ws protocol (websocket at /graphql). "
    "Admin tokens go in the connection_init payload under `authorization`. A refused "
    "subscription gets an `error` message with `extensions.code`."
)
class Subscription:
    """Live events over the graphql-transport-ws protocol (websocket at /graphql)."""

    stock_changed: AsyncIterator[StockChangeEventType] = with_arguments(
        strawberry.subscription(
            resolver=live.stock_changed,
            description="Public. Every committed stock change, in commit order per stock "
            "level. `skus` null: all. `after`: the cursor of an event received earlier; what "
            "was missed is replayed from the ledger, then live events follow, with no gap and "
            "no duplicate. A client too slow to keep up is disconnected (close code 4008) and "
            "resumes with its last cursor.",
        ),
        skus="Only these SKUs: 1 to 1000, each known (else BAD_USER_INPUT); null: every SKU.",
        after="Resume after this cursor (StockChangeEvent.cursor or Query.stockCursor); "
        "null: changes from now on. A cursor not issued here or too old: BAD_CURSOR.",
    )
    low_stock_alerts: AsyncIterator[LowStockAlertType] = strawberry.subscription(
        resolver=live.low_stock_alerts,
        extensions=admin_only(),
        description="Admin only (FORBIDDEN without a token). LOW when a variant's available "
        "units (summed over locations) fall to or under its threshold, OUT_OF_STOCK at "
        "zero, BACK_IN_STOCK when above the threshold again; one alert per crossing. From "
        "now on only (no replay).",
    )
    order_status_changed: AsyncIterator[OrderType] = with_arguments(
        strawberry.subscription(
            resolver=live.order_status_changed,
            description="The order now, then again each time its status changes. For admins, "
            "or the buyer passing the order's `reservationId` (else FORBIDDEN; an unknown "
            "order: NOT_FOUND).",
        ),
        order_id="Order.id.",
        reservation_id="The id of the reservation the order was made from: the buyer's proof. "
        "Not needed with an admin token.",
    )
    orders_changed: AsyncIterator[OrderType] = strawberry.subscription(
        resolver=live.orders_changed,
        extensions=admin_only(),
        description="Admin only (FORBIDDEN without a token). Every order whose status "
        "changes, as it is when delivered, from now on (no replay): a new order from checkout "
        "(PENDING_PAYMENT), then PAID, NEEDS_ATTENTION, CANCELLED, refunds... Changes in quick "
        "succession may each show the latest status. A client too slow to keep up is "
        "disconnected (close code 4008).",
    )
