"""The Query root: shapes here, logic in `gql_inventory.resolvers`."""

from __future__ import annotations

import strawberry

from gql_inventory.resolvers import admin, catalog, live, reservations
from gql_inventory.schema.catalog import LocationType, ProductConnection, ProductType, VariantType
from gql_inventory.schema.orders import OrderType, ReservationType, StockMovementConnection


@strawberry.type
class Query:
    """Read operations. Storefront reads are public."""

    product: ProductType | None = strawberry.field(resolver=catalog.product)
    products: ProductConnection = strawberry.field(resolver=catalog.products)
    variant: VariantType | None = strawberry.field(resolver=catalog.variant)
    variants: list[VariantType | None] = strawberry.field(resolver=catalog.variants)
    locations: list[LocationType] = strawberry.field(resolver=catalog.locations)
    reservation: ReservationType | None = strawberry.field(resolver=reservations.reservation)
    order: OrderType | None = strawberry.field(resolver=reservations.order)
    stock_movements: StockMovementConnection = strawberry.field(resolver=admin.stock_movements)
    stock_cursor: str = strawberry.field(
        resolver=live.stock_cursor,
        description="Cursor of the newest stock event: pass it as stockChanged(after:) to get "
        "every change from now on, with no race between a read and the subscription.",
    )
