"""Catalog queries: product, products, variant, variants, locations."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.resolvers.cursors import decode_cursor
from gql_inventory.schema.catalog import LocationType, ProductType, VariantType
from gql_inventory.schema.connections import ProductConnection, ProductEdge, forward_page
from gql_inventory.schema.errors import BadRequest

MAX_PAGE_SIZE = 100
MAX_SKUS = 250


async def product(
    info: Info[Context, None], id: strawberry.ID | None = None, handle: str | None = None
) -> ProductType | None:
    """A product by `id` or by `handle` (exactly one of them)."""
    if (id is None) == (handle is None):
        raise BadRequest("give exactly one of id and handle")
    if id is not None:
        if not (str(id).isascii() and str(id).isdigit() and int(id) < 2**63):
            return None  # not an id we issue (BIGINT): no such product
        row = await info.context.loaders.product_by_id.load(int(id))
        return ProductType.from_row(row) if row else None
    assert handle is not None  # exactly one of them was given
    found = await info.context.loaders.product_by_handle(handle)
    return ProductType.from_row(found) if found else None


async def products(
    info: Info[Context, None],
    first: int | None = 20,
    after: str | None = None,
    query: str | None = None,
    low_stock_only: bool | None = False,
    in_stock_only: bool | None = False,
) -> ProductConnection:
    """A forward Relay page of products ordered by id; `first` from 0 to 100 (null: 20)."""
    first = 20 if first is None else first
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise BadRequest(f"first must be between 0 and {MAX_PAGE_SIZE}")
    after_id = decode_cursor("product", after) if after is not None else None
    page = await info.context.loaders.product_page(
        first=first,
        after_id=after_id,
        query=query,
        low_stock_only=bool(low_stock_only),
        in_stock_only=bool(in_stock_only),
    )
    for row in page.products:
        info.context.loaders.product_by_id.prime(row.id, row)
    edges, page_info = forward_page(
        page.products,
        kind="product",
        key=lambda row: row.id,
        node=ProductType.from_row,
        edge=ProductEdge,
        has_next_page=page.has_next_page,
        after_given=after_id is not None,
    )
    return ProductConnection(edges=edges, page_info=page_info)


async def variant(info: Info[Context, None], sku: str) -> VariantType | None:
    """The variant with this SKU, or null."""
    row = await info.context.loaders.variant_by_sku.load(sku)
    return VariantType.from_row(row) if row else None


async def variants(info: Info[Context, None], skus: list[str]) -> list[VariantType | None]:
    """Variants in the order of `skus`; null where a SKU is unknown (at most 250 SKUs)."""
    if len(skus) > MAX_SKUS:
        raise BadRequest(f"at most {MAX_SKUS} skus")
    rows = await info.context.loaders.variant_by_sku.load_many(skus)
    return [VariantType.from_row(r) if r else None for r in rows]


async def locations(info: Info[Context, None]) -> list[LocationType]:
    """Every location, by priority (the order reservations draw from)."""
    return [LocationType.from_row(row) for row in await info.context.loaders.locations()]
