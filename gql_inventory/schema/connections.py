"""Relay cursor connections: PageInfo, the edge and connection types, and their builder.

The GraphQL Cursor Connections spec (https://relay.dev/graphql/connections.htm):
a connection has `edges` (each a `cursor` and a `node`) and a `pageInfo`. Pages
are keyset pages: a cursor is ``encode_cursor(kind, key)`` of the node's key
(an id), and the next page starts after it.

Why not `strawberry.relay.Connection`/`Edge`/`PageInfo` themselves: their node type
must implement the `Node` interface (global ids, which would change every `id` the
contract pins), their descriptions are generic while ours say which argument takes
the cursor, and `relay.connection` fields add `last`/`before` arguments we do not
serve. docs/adr/0007-graphql-layer.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import strawberry

from gql_inventory.live.cursors import encode_cursor
from gql_inventory.schema.catalog import ProductType
from gql_inventory.schema.orders import OrderType, ReservationType, StockMovementType


@strawberry.type(
    name="PageInfo",
    description="Where a page sits in its list (Relay GraphQL Cursor Connections spec).",
)
class PageInfo:
    """Relay page info (GraphQL Cursor Connections spec)."""

    has_next_page: bool = strawberry.field(
        description="More items follow: ask again with `after: endCursor`."
    )
    has_previous_page: bool = strawberry.field(
        description="The page was asked for with `after` (items precede it)."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the first item; null on an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last item (pass as `after` for the next page); null on an "
        "empty page."
    )


@strawberry.type(name="ProductEdge", description="A product with its cursor.")
class ProductEdge:
    """A product with its cursor."""

    cursor: str = strawberry.field(
        description="Opaque; pass as `products(after:)` to read on after this product."
    )
    node: ProductType = strawberry.field(description="The product.")


@strawberry.type(name="ProductConnection", description="A page of products, by id.")
class ProductConnection:
    """A page of products."""

    edges: list[ProductEdge] = strawberry.field(description="The products of this page.")
    page_info: PageInfo = strawberry.field(description="Whether more pages follow.")


@strawberry.type(name="StockMovementEdge", description="A movement with its cursor.")
class StockMovementEdge:
    """A movement with its cursor."""

    cursor: str = strawberry.field(
        description="Opaque; pass as `stockMovements(after:)` to read older movements."
    )
    node: StockMovementType = strawberry.field(description="The movement.")


@strawberry.type(name="StockMovementConnection", description="A page of the ledger, newest first.")
class StockMovementConnection:
    """A page of the ledger, newest first."""

    edges: list[StockMovementEdge] = strawberry.field(description="The movements of this page.")
    page_info: PageInfo = strawberry.field(description="Whether older movements follow.")


@strawberry.type(name="OrderEdge", description="An order with its cursor.")
class OrderEdge:
    """An order with its cursor."""

    cursor: str = strawberry.field(
        description="Opaque; pass as `orders(after:)` to read on with older orders."
    )
    node: OrderType = strawberry.field(description="The order.")


@strawberry.type(name="OrderConnection", description="A page of orders, newest first (then by id).")
class OrderConnection:
    """A page of orders, newest first."""

    edges: list[OrderEdge] = strawberry.field(description="The orders of this page.")
    page_info: PageInfo = strawberry.field(description="Whether older orders follow.")
    total_count: int = strawberry.field(
        description="How many orders match the filters in all, on every page together."
    )


@strawberry.type(name="ReservationEdge", description="A reservation with its cursor.")
class ReservationEdge:
    """A reservation with its cursor."""

    cursor: str = strawberry.field(
        description="Opaque; pass as `reservations(after:)` to read on with later expiries."
    )
    node: ReservationType = strawberry.field(description="The reservation.")


@strawberry.type(
    name="ReservationConnection",
    description="A page of reservations, soonest expiry first (then by id).",
)
class ReservationConnection:
    """A page of reservations, soonest expiry first."""

    edges: list[ReservationEdge] = strawberry.field(description="The reservations of this page.")
    page_info: PageInfo = strawberry.field(
        description="Whether reservations expiring later follow."
    )
    total_count: int = strawberry.field(
        description="How many reservations match the filters in all, on every page together."
    )


class _Edge(Protocol):
    @property
    def cursor(self) -> str: ...


RowT = TypeVar("RowT")
NodeT = TypeVar("NodeT")
NodeT_contra = TypeVar("NodeT_contra", contravariant=True)
EdgeT = TypeVar("EdgeT", bound=_Edge)
EdgeT_co = TypeVar("EdgeT_co", bound=_Edge, covariant=True)


class _EdgeType(Protocol[NodeT_contra, EdgeT_co]):
    """An edge type's constructor, e.g. `ProductEdge`."""

    def __call__(self, *, cursor: str, node: NodeT_contra) -> EdgeT_co: ...


def forward_page(
    rows: Sequence[RowT],
    *,
    kind: str,
    key: Callable[[RowT], int],
    node: Callable[[RowT], NodeT],
    edge: _EdgeType[NodeT, EdgeT],
    has_next_page: bool,
    after_given: bool,
) -> tuple[list[EdgeT], PageInfo]:
    """The edges and PageInfo of a forward keyset page, in the order of `rows`.

    Each edge is ``edge(cursor=encode_cursor(kind, key(row)), node=node(row))``;
    `has_previous_page` is whether the page was asked for with `after`; start and end
    cursors are the first and last edges' (null when the page is empty).
    """
    return cursor_page(
        rows,
        cursor=lambda row: encode_cursor(kind, key(row)),
        node=node,
        edge=edge,
        has_next_page=has_next_page,
        after_given=after_given,
    )


def cursor_page(
    rows: Sequence[RowT],
    *,
    cursor: Callable[[RowT], str],
    node: Callable[[RowT], NodeT],
    edge: _EdgeType[NodeT, EdgeT],
    has_next_page: bool,
    after_given: bool,
) -> tuple[list[EdgeT], PageInfo]:
    """`forward_page` for any cursor: each edge is ``edge(cursor=cursor(row),
    node=node(row))`` (e.g. `live.cursors.encode_keyset_cursor` of a sort key and id)."""
    edges = [edge(cursor=cursor(row), node=node(row)) for row in rows]
    return edges, PageInfo(
        has_next_page=has_next_page,
        has_previous_page=after_given,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
