"""Inbound shipments (admin): createInboundShipment, receiveInboundShipment,
cancelInboundShipment, inboundShipments, inboundShipment.

Their fields declare the `IsAdmin` permission (`schema.query`, `schema.mutation`).
Each mutation is one domain call (`stock.shipments`) in one transaction; reads go
through the request's loaders and `stock.shipment_reads`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.errors import DomainError, ShipmentNotFound, argument
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.live.cursors import encode_keyset_cursor
from gql_inventory.orders.lists import Keyset
from gql_inventory.resolvers.backoffice import DEFAULT_LIST_PAGE, list_page_size
from gql_inventory.resolvers.cursors import decode_keyset_cursor
from gql_inventory.schema.connections import cursor_page
from gql_inventory.schema.inputs import StockLineInput
from gql_inventory.schema.payloads import user_errors
from gql_inventory.schema.shipments import (
    CreateInboundShipmentInput,
    InboundShipmentConnection,
    InboundShipmentEdge,
    InboundShipmentPayload,
    InboundShipmentStatus,
    InboundShipmentType,
    ReceiveInboundShipmentInput,
)
from gql_inventory.stock import shipments
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.shipment_reads import shipment_page
from gql_inventory.uow import run_in_transaction

_KIND = "shipment"


def _lines(lines: list[StockLineInput]) -> list[LineRequest]:
    return [LineRequest(sku=ln.sku, quantity=ln.quantity) for ln in lines]


async def _payload(info: Info[Context, None], shipment_id: uuid.UUID) -> InboundShipmentPayload:
    row = await info.context.loaders.shipments.shipment_by_id.load(shipment_id)
    if row is None:  # pragma: no cover - it was just written
        raise LookupError(f"inbound shipment {shipment_id} vanished")
    return InboundShipmentPayload(shipment=InboundShipmentType.from_row(row), user_errors=[])


async def _run(
    info: Info[Context, None], work: Callable[[UnitOfWork], Awaitable[uuid.UUID]]
) -> InboundShipmentPayload:
    """Run `work` in one transaction; its shipment as committed, or the refusals."""
    try:
        shipment_id = await run_in_transaction(
            info.context.services, work, actor=info.context.actor
        )
    except DomainError as error:
        return InboundShipmentPayload(shipment=None, user_errors=user_errors(error))
    return await _payload(info, shipment_id)


async def create_inbound_shipment(
    info: Info[Context, None], input: CreateInboundShipmentInput
) -> InboundShipmentPayload:
    """A new OPEN inbound shipment (admin)."""
    key = IdempotencyKey.of(input.idempotency_key, owner=info.context.actor)
    return await _run(
        info,
        lambda uow: shipments.create_shipment(
            uow,
            location_id=input.location_id,
            lines=_lines(input.lines),
            reference=input.reference,
            expected_at=input.expected_at,
            idempotency_key=key,
        ),
    )


async def receive_inbound_shipment(
    info: Info[Context, None], input: ReceiveInboundShipmentInput
) -> InboundShipmentPayload:
    """Receive some or all of a shipment's units (admin)."""
    key = IdempotencyKey.of(input.idempotency_key, owner=info.context.actor)
    lines = None if input.lines is None else _lines(input.lines)

    async def work(uow: UnitOfWork) -> uuid.UUID:
        shipment_id = shipments.parse_shipment_id(input.shipment_id)
        receipt = await shipments.receive_shipment(
            uow, shipment_id=shipment_id, lines=lines, idempotency_key=key
        )
        return receipt.shipment_id

    return await _run(info, work)


async def cancel_inbound_shipment(
    info: Info[Context, None], shipment_id: strawberry.ID
) -> InboundShipmentPayload:
    """Cancel what a shipment still expects (admin)."""
    field = argument("shipment_id")

    async def work(uow: UnitOfWork) -> uuid.UUID:
        parsed = shipments.parse_shipment_id(shipment_id, field=field)
        try:
            return await shipments.cancel_shipment(uow, shipment_id=parsed)
        except DomainError as error:
            error.field = field
            raise

    return await _run(info, work)


async def inbound_shipment(
    info: Info[Context, None], id: strawberry.ID
) -> InboundShipmentType | None:
    """One shipment, or null (admin)."""
    try:
        shipment_id = shipments.parse_shipment_id(id)
    except ShipmentNotFound:
        return None
    row = await info.context.loaders.shipments.shipment_by_id.load(shipment_id)
    return None if row is None else InboundShipmentType.from_row(row)


async def inbound_shipments(
    info: Info[Context, None],
    status: list[InboundShipmentStatus] | None = None,
    first: int | None = DEFAULT_LIST_PAGE,
    after: str | None = None,
) -> InboundShipmentConnection:
    """Shipments newest first (`createdAt`, then id), filtered by status (admin)."""
    size = list_page_size(first)
    start = None if after is None else Keyset(*decode_keyset_cursor(_KIND, after))
    async with info.context.engine.connect() as conn:
        page = await shipment_page(
            conn,
            first=size,
            after=start,
            statuses=None if status is None else [s.value for s in status],
        )
    for row in page.rows:
        info.context.loaders.shipments.shipment_by_id.prime(row["id"], row)
    edges, page_info = cursor_page(
        page.rows,
        cursor=lambda row: encode_keyset_cursor(_KIND, row["created_at"], row["id"]),
        node=InboundShipmentType.from_row,
        edge=InboundShipmentEdge,
        has_next_page=page.has_next_page,
        after_given=start is not None,
    )
    return InboundShipmentConnection(edges=edges, page_info=page_info, total_count=page.total_count)
