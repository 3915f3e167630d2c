"""Reservation, Order and StockMovement types, user errors, inputs and payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import RowMapping
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.inventory.errors import DomainError, DomainErrors
from gql_inventory.inventory.ledger import AppliedMovement
from gql_inventory.schema.catalog import (
    LocationType,
    MoneyType,
    PageInfo,
    StockLevelType,
    VariantType,
    load_location,
)
from gql_inventory.schema.enums import (
    AdjustmentReason,
    MovementKind,
    OrderStatus,
    ReservationStatus,
    UserErrorCode,
)


async def load_variant(info: Info[Context, None], variant_id: int) -> VariantType:
    """The variant with this id (foreign keys guarantee it exists)."""
    row = await info.context.loaders.variant_by_id.load(variant_id)
    if row is None:  # pragma: no cover
        raise LookupError(f"variant {variant_id} vanished")
    return VariantType.from_row(row)


@strawberry.type(name="ReservationLine")
class ReservationLineType:
    """Units of one variant held by a reservation (summed over locations)."""

    quantity: int
    variant_id: strawberry.Private[int]

    @strawberry.field
    async def variant(self, info: Info[Context, None]) -> VariantType:
        """The reserved variant."""
        return await load_variant(info, self.variant_id)


@strawberry.type(name="Reservation")
class ReservationType:
    """A hold on stock. Its id is unguessable: holding it is the right to use it."""

    id: strawberry.ID
    status: ReservationStatus
    expires_at: datetime
    created_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> ReservationType:
        """Build from a `reservations` row."""
        return cls(
            id=strawberry.ID(str(row["id"])),
            status=ReservationStatus(row["status"]),
            expires_at=row["expires_at"],
            created_at=row["created_at"],
        )

    @strawberry.field
    async def lines(self, info: Info[Context, None]) -> list[ReservationLineType]:
        """One line per variant. Lines stay listed after the reservation ends."""
        import uuid

        lines = await info.context.loaders.reservation_lines.load(uuid.UUID(self.id))
        return [ReservationLineType(quantity=q, variant_id=v) for v, q in lines]


@strawberry.type(name="OrderLine")
class OrderLineType:
    """A variant of an order with its unit price frozen at checkout."""

    quantity: int
    refunded_quantity: int
    unit_price: MoneyType
    variant_id: strawberry.Private[int]

    @strawberry.field
    async def variant(self, info: Info[Context, None]) -> VariantType:
        """The ordered variant."""
        return await load_variant(info, self.variant_id)


@strawberry.type(name="PaymentEvent")
class PaymentEventType:
    """Something that happened to an order's payment (attempt, webhook event, refund)."""

    type: str
    provider_event_id: str | None
    detail: str | None
    occurred_at: datetime


@strawberry.type(name="Order")
class OrderType:
    """An order made at checkout; amounts are decimal Money."""

    id: strawberry.ID
    status: OrderStatus
    payment_intent_id: str | None
    email: str | None
    attention_reason: str | None = strawberry.field(
        description="Why the order is NEEDS_ATTENTION (e.g. paid after its stock was gone)."
    )
    last_payment_error: str | None
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[RowMapping]

    @classmethod
    def from_row(cls, row: RowMapping) -> OrderType:
        """Build from an `orders` row."""
        return cls(
            id=strawberry.ID(str(row["id"])),
            status=OrderStatus(row["status"]),
            payment_intent_id=row["payment_intent_id"],
            email=row["email"],
            attention_reason=row["attention_reason"],
            last_payment_error=row["last_payment_error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            row=row,
        )

    @strawberry.field
    def total(self) -> MoneyType:
        """The amount charged at checkout."""
        return MoneyType.from_minor(self.row["total_amount"], self.row["currency_code"])

    @strawberry.field
    async def lines(self, info: Info[Context, None]) -> list[OrderLineType]:
        """The order's variants."""
        rows = await info.context.loaders.orders.order_lines.load(self.row["id"])
        return [
            OrderLineType(
                quantity=r["quantity"],
                refunded_quantity=r["refunded_quantity"],
                unit_price=MoneyType.from_minor(r["unit_price_amount"], r["currency_code"]),
                variant_id=r["variant_id"],
            )
            for r in rows
        ]

    @strawberry.field
    async def reservation(self, info: Info[Context, None]) -> ReservationType | None:
        """The reservation the order was made from."""
        if self.row["reservation_id"] is None:
            return None
        row = await info.context.loaders.orders.reservation_by_id.load(self.row["reservation_id"])
        return ReservationType.from_row(row) if row else None

    @strawberry.field
    async def payment_events(self, info: Info[Context, None]) -> list[PaymentEventType]:
        """Payment history, oldest first: why the order is in its status."""
        rows = await info.context.loaders.orders.payment_events.load(self.row["id"])
        return [
            PaymentEventType(
                type=r["type"],
                provider_event_id=r["provider_event_id"],
                detail=r["detail"],
                occurred_at=r["created_at"],
            )
            for r in rows
        ]


@strawberry.type(name="StockMovement")
class StockMovementType:
    """A ledger row: one change of one stock level."""

    id: strawberry.ID
    kind: MovementKind
    sku: str
    on_hand_delta: int
    reserved_delta: int
    on_hand_after: int
    reserved_after: int
    version: int = strawberry.field(description="The level's version after this change.")
    reason: str | None
    reference: str | None = strawberry.field(
        description="reservation:<id>, order:<id> or the Stripe event it belongs to."
    )
    occurred_at: datetime
    location_id: strawberry.Private[int]

    @strawberry.field
    async def location(self, info: Info[Context, None]) -> LocationType:
        """Where the level is."""
        return await load_location(info, self.location_id)

    @classmethod
    def build(cls, movement: AppliedMovement | RowMapping, sku: str) -> StockMovementType:
        """Build from an applied movement or a `stock_movements` row."""
        m: Any = movement if isinstance(movement, AppliedMovement) else _Attr(movement)
        return cls(
            id=strawberry.ID(str(m.id)),
            kind=MovementKind(m.kind),
            sku=sku,
            on_hand_delta=m.on_hand_delta,
            reserved_delta=m.reserved_delta,
            on_hand_after=m.on_hand_after,
            reserved_after=m.reserved_after,
            version=m.version,
            reason=m.reason,
            reference=m.reference,
            occurred_at=m.occurred_at,
            location_id=m.location_id,
        )


class _Attr:
    def __init__(self, row: RowMapping) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return self._row[name]


@strawberry.type(name="StockMovementEdge")
class StockMovementEdge:
    """A movement with its cursor."""

    cursor: str
    node: StockMovementType


@strawberry.type(name="StockMovementConnection")
class StockMovementConnection:
    """A page of the ledger, newest first."""

    edges: list[StockMovementEdge]
    page_info: PageInfo


# ---------------------------------------------------------------- errors


@strawberry.type(name="UserError")
class UserError:
    """An expected refusal; `field` is the path into the input (["input", "lines", "0"])."""

    code: UserErrorCode
    message: str
    field: list[str] | None = None
    sku: str | None = None
    requested: int | None = None
    available: int | None = None
    location_id: strawberry.ID | None = None


def _location_id(error: DomainError) -> strawberry.ID | None:
    location_id = getattr(error, "location_id", None)
    return None if location_id is None else strawberry.ID(str(location_id))


def user_errors(error: DomainError) -> list[UserError]:
    """Turn a domain refusal (or a group of them) into `UserError`s."""
    errors = error.errors if isinstance(error, DomainErrors) else [error]
    return [
        UserError(
            code=UserErrorCode(e.code),
            message=e.message,
            field=e.field,
            sku=getattr(e, "sku", None),
            requested=getattr(e, "requested", None),
            available=getattr(e, "available", None),
            location_id=_location_id(e),
        )
        for e in errors
    ]


# ---------------------------------------------------------------- inputs


@strawberry.input
class StockLineInput:
    """A SKU and a quantity in units."""

    sku: str
    quantity: int


@strawberry.input
class ReserveStockInput:
    """Lines to reserve, all or nothing. `ttlSeconds` is capped by the server maximum."""

    lines: list[StockLineInput]
    idempotency_key: str | None = None
    ttl_seconds: int | None = None


@strawberry.input
class UpdateReservationInput:
    """Absolute quantities per SKU; 0 removes the line."""

    reservation_id: strawberry.ID
    lines: list[StockLineInput]


@strawberry.input
class CheckoutInput:
    """Turn a reservation into an order with a payment."""

    reservation_id: strawberry.ID
    email: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class AdjustStockInput:
    """Admin: add or remove units (negative delta) at a location."""

    sku: str
    delta: int
    reason: AdjustmentReason
    location_id: strawberry.ID | None = None
    note: str | None = None
    expected_on_hand: int | None = None
    idempotency_key: str | None = None


@strawberry.input
class SetStockInput:
    """Admin: set the on-hand figure (a count)."""

    sku: str
    on_hand: int
    location_id: strawberry.ID | None = None
    reason: AdjustmentReason | None = None
    expected_on_hand: int | None = None
    idempotency_key: str | None = None


@strawberry.input
class RefundOrderInput:
    """Admin: refund lines (null: everything not yet refunded), restocking by default."""

    order_id: strawberry.ID
    lines: list[StockLineInput] | None = None
    restock: bool | None = True
    reason: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class CancelOrderInput:
    """Admin: cancel an order (pending: release; paid: full refund with restock)."""

    order_id: strawberry.ID
    reason: str | None = None


# ---------------------------------------------------------------- payloads


@strawberry.type
class ReserveStockPayload:
    """The reservation, or why not."""

    reservation: ReservationType | None
    user_errors: list[UserError]


@strawberry.type
class ReleaseReservationPayload:
    """The released reservation, or why not."""

    reservation: ReservationType | None
    user_errors: list[UserError]


@strawberry.type
class CheckoutPayload:
    """The order and the secret to confirm its payment with (Stripe.js), or why not."""

    order: OrderType | None
    payment_client_secret: str | None
    user_errors: list[UserError]


@strawberry.type
class AdjustStockPayload:
    """The level after the change and the movement written (null when nothing changed)."""

    stock_level: StockLevelType | None
    movement: StockMovementType | None
    user_errors: list[UserError]


@strawberry.type
class RefundOrderPayload:
    """The order after the refund, or why not."""

    order: OrderType | None
    user_errors: list[UserError]


@strawberry.type
class CancelOrderPayload:
    """The order after cancellation, or why not."""

    order: OrderType | None
    user_errors: list[UserError]
