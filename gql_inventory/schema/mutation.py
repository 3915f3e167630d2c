"""The Mutation root: shapes here, logic in `gql_inventory.resolvers`."""

from __future__ import annotations

import strawberry

from gql_inventory.resolvers import admin, reservations
from gql_inventory.schema.orders import (
    AdjustStockPayload,
    CancelOrderPayload,
    CheckoutPayload,
    RefundOrderPayload,
    ReleaseReservationPayload,
    ReserveStockPayload,
)


@strawberry.type
class Mutation:
    """Every mutation runs in one transaction; refusals come back as `userErrors`."""

    reserve_stock: ReserveStockPayload = strawberry.field(resolver=reservations.reserve_stock)
    update_reservation: ReserveStockPayload = strawberry.field(
        resolver=reservations.update_reservation
    )
    release_reservation: ReleaseReservationPayload = strawberry.field(
        resolver=reservations.release_reservation
    )
    checkout: CheckoutPayload = strawberry.field(resolver=reservations.checkout)
    adjust_stock: AdjustStockPayload = strawberry.field(resolver=admin.adjust_stock)
    set_stock: AdjustStockPayload = strawberry.field(resolver=admin.set_stock)
    refund_order: RefundOrderPayload = strawberry.field(resolver=admin.refund_order)
    cancel_order: CancelOrderPayload = strawberry.field(resolver=admin.cancel_order)
