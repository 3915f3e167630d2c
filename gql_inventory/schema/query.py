"""The Query root: shapes here, logic in `gql_inventory.resolvers`."""

from __future__ import annotations

import strawberry

from gql_inventory.resolvers import catalog
from gql_inventory.schema.catalog import LocationType, ProductConnection, ProductType, VariantType


@strawberry.type
class Query:
    """Read operations. Storefront reads are public."""

    product: ProductType | None = strawberry.field(resolver=catalog.product)
    products: ProductConnection = strawberry.field(resolver=catalog.products)
    variant: VariantType | None = strawberry.field(resolver=catalog.variant)
    variants: list[VariantType | None] = strawberry.field(resolver=catalog.variants)
    locations: list[LocationType] = strawberry.field(resolver=catalog.locations)
