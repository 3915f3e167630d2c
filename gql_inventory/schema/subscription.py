"""The Subscription root: shapes here, logic in `gql_inventory.resolvers.live`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import strawberry

from gql_inventory.resolvers import live
from gql_inventory.schema.events import LowStockAlertType, StockChangeEventType
from gql_inventory.schema.orders import OrderType


@strawberry.type
class Subscription:
    """Live events over the graphql-transport-ws protocol (websocket at /graphql)."""

    stock_changed: AsyncIterator[StockChangeEventType] = strawberry.subscription(
        resolver=live.stock_changed,
        description="Every committed stock change, in commit order per stock level. `skus` "
        "null: all. `after`: the cursor of an event received earlier; what was missed is "
        "replayed from the ledger, then live events follow, with no gap and no duplicate. "
        "A client too slow to keep up is disconnected (close code 4008) and resumes with "
        "its last cursor.",
    )
    low_stock_alerts: AsyncIterator[LowStockAlertType] = strawberry.subscription(
        resolver=live.low_stock_alerts,
        description="Admin: LOW when a variant's available units (summed over locations) "
        "fall to or under its threshold, OUT_OF_STOCK at zero, BACK_IN_STOCK when above "
        "the threshold again; one alert per crossing.",
    )
    order_status_changed: AsyncIterator[OrderType] = strawberry.subscription(
        resolver=live.order_status_changed,
        description="The order now, then again each time its status changes. For admins, "
        "or the buyer passing the order's `reservationId`.",
    )
