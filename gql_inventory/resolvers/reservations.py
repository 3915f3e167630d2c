"""Storefront mutations and queries: reserveStock, updateReservation, releaseReservation,
checkout, reservation, order."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.errors import DomainError, OrderNotFound, ReservationNotFound, in_input
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.kit import metrics
from gql_inventory.orders import checkout as checkout_use_case
from gql_inventory.orders import orders
from gql_inventory.reserving.front import reserve_stock as reserve_stock_use_case
from gql_inventory.resolvers.payloads import order_payload, reservation_payload
from gql_inventory.schema.errors import Forbidden
from gql_inventory.schema.inputs import (
    CheckoutInput,
    ReserveStockInput,
    StockLineInput,
    UpdateReservationInput,
)
from gql_inventory.schema.orders import OrderType, ReservationType
from gql_inventory.schema.payloads import (
    CheckoutPayload,
    ReleaseReservationPayload,
    ReserveStockPayload,
    user_errors,
)
from gql_inventory.stock import reservations
from gql_inventory.stock.levels import LineRequest
from gql_inventory.uow import run_in_transaction


def _lines(lines: list[StockLineInput]) -> list[LineRequest]:
    return [LineRequest(sku=line.sku, quantity=line.quantity) for line in lines]


#: The `created` child of the reservations counter (a `labels()` lookup costs a lock and a
#: dict probe per call).
_RESERVATIONS_CREATED = metrics.RESERVATIONS.labels("created")


async def reserve_stock(info: Info[Context, None], input: ReserveStockInput) -> ReserveStockPayload:
    """Reserve every line or none."""
    context = info.context
    actor = context.actor
    try:
        reserved = await reserve_stock_use_case(
            context.services,
            _lines(input.lines),
            ttl_seconds=input.ttl_seconds,
            idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=actor),
            actor=actor,
        )
    except DomainError as error:
        return ReserveStockPayload(reservation=None, user_errors=user_errors(error))
    _RESERVATIONS_CREATED.inc()
    return ReserveStockPayload(reservation=ReservationType.of(reserved), user_errors=[])


async def update_reservation(
    info: Info[Context, None], input: UpdateReservationInput
) -> ReserveStockPayload:
    """Set absolute quantities on an ACTIVE reservation; extends its expiry."""
    services = info.context.services
    try:
        reservation_id = reservations.parse_reservation_id(
            input.reservation_id, field=in_input("reservation_id")
        )
        await run_in_transaction(
            services,
            lambda s: reservations.update_reservation(
                s, reservation_id, _lines(input.lines), limits=services.reservation_limits
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return ReserveStockPayload(reservation=None, user_errors=user_errors(error))
    return ReserveStockPayload(
        reservation=await reservation_payload(info, reservation_id), user_errors=[]
    )


async def release_reservation(
    info: Info[Context, None], reservation_id: strawberry.ID
) -> ReleaseReservationPayload:
    """Give the reserved stock back."""
    services = info.context.services
    try:
        rid = reservations.parse_reservation_id(reservation_id)
        await run_in_transaction(
            services, lambda s: reservations.release_reservation(s, rid), actor=info.context.actor
        )
    except DomainError as error:
        return ReleaseReservationPayload(reservation=None, user_errors=user_errors(error))
    return ReleaseReservationPayload(
        reservation=await reservation_payload(info, rid), user_errors=[]
    )


async def checkout(info: Info[Context, None], input: CheckoutInput) -> CheckoutPayload:
    """Make an order (PENDING_PAYMENT) with a payment from an ACTIVE reservation."""
    services = info.context.services
    try:
        rid = reservations.parse_reservation_id(
            input.reservation_id, field=in_input("reservation_id")
        )
        result = await run_in_transaction(
            services,
            lambda s: checkout_use_case.checkout(
                s,
                rid,
                provider=services.payments,
                email=input.email,
                idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=info.context.actor),
                payment_window_seconds=services.settings.payment_window_seconds,
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return CheckoutPayload(
            order=None, payment_client_secret=None, user_errors=user_errors(error)
        )
    metrics.ORDERS.labels("created").inc()
    return CheckoutPayload(
        order=await order_payload(info, result.order_id),
        payment_client_secret=result.client_secret,
        user_errors=[],
    )


async def reservation(info: Info[Context, None], id: strawberry.ID) -> ReservationType | None:
    """A reservation by its id (the id is the capability)."""
    try:
        rid = reservations.parse_reservation_id(id)
    except ReservationNotFound:
        return None
    row = await info.context.loaders.orders.reservation_by_id.load(rid)
    return ReservationType.from_row(row) if row else None


async def order(
    info: Info[Context, None],
    id: strawberry.ID,
    reservation_id: strawberry.ID | None = None,
) -> OrderType | None:
    """An order: admins see any; a buyer passes the order's reservation id as proof."""
    try:
        oid = orders.parse_order_id(id)
    except OrderNotFound:
        return None
    row = await info.context.loaders.orders.order_by_id.load(oid)
    if not info.context.is_admin:
        held = _uuid_or_none(reservation_id)
        if row is None or held is None or row["reservation_id"] != held:
            raise Forbidden("admin token or the order's reservationId required")
    return OrderType.from_row(row) if row else None


def _uuid_or_none(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None
