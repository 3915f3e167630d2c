"""Reservation, Order and StockMovement types (inputs: `inputs`; payloads: `payloads`;
pages: `connections`)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from sqlalchemy import RowMapping
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.rows import ReservationRow
from gql_inventory.schema.catalog import (
    LocationType,
    MoneyType,
    VariantType,
    load_location,
)
from gql_inventory.schema.docs import described_field
from gql_inventory.schema.enums import MovementKind, OrderStatus, ReservationStatus, StockState
from gql_inventory.stock.ledger import AppliedMovement


async def load_variant(info: Info[Context, None], variant_id: int) -> VariantType:
    """The variant with this id (foreign keys guarantee it exists)."""
    row = await info.context.loaders.variant_by_id.load(variant_id)
    if row is None:  # pragma: no cover
        raise LookupError(f"variant {variant_id} vanished")
    return VariantType.from_row(row)


@strawberry.type(
    name="ReservationLine",
    description="Units of one variant held by a reservation, summed over the locations they "
    "were drawn from.",
)
class ReservationLineType:
    """Units of one variant held by a reservation (summed over locations)."""

    quantity: int = strawberry.field(description="Units of the variant (at least 1).")
    backordered_quantity: int = strawberry.field(
        default=0,
        description="Part of quantity not covered by stock on hand (CONTINUE policy): "
        "promised, to be filled as stock arrives once the order is paid.",
    )
    variant_id: strawberry.Private[int]

    @described_field("The reserved variant.")
    async def variant(self, info: Info[Context, None]) -> VariantType:
        """The reserved variant."""
        return await load_variant(info, self.variant_id)


@strawberry.type(
    name="Reservation",
    description="A hold on stock (a cart, then the stock of an unpaid order). Its id is "
    "unguessable: whoever holds it may read, change, release and check out the reservation, "
    "so keep it private to the buyer.",
)
class ReservationType:
    """A hold on stock. Its id is unguessable: holding it is the right to use it."""

    id: strawberry.ID = strawberry.field(description="A random UUID; the buyer's capability.")
    status: ReservationStatus = strawberry.field(description="Only ACTIVE holds units.")
    expires_at: datetime = strawberry.field(
        description="When an ACTIVE reservation gives its units back if unpaid. "
        "updateReservation moves it to now + the reservation's ttlSeconds; a payment in "
        "progress may extend it."
    )
    created_at: datetime = strawberry.field(description="When reserveStock made it.")

    @classmethod
    def from_row(cls, row: RowMapping) -> ReservationType:
        """Build from a `reservations` row."""
        return cls(
            id=strawberry.ID(str(row["id"])),
            status=ReservationStatus(row["status"]),
            expires_at=row["expires_at"],
            created_at=row["created_at"],
        )

    @classmethod
    def of(cls, row: ReservationRow) -> ReservationType:
        """Build from a typed `reservations` row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            status=ReservationStatus(row.status.value),
            expires_at=row.expires_at,
            created_at=row.created_at,
        )

    @described_field(
        "One line per variant. Lines stay listed after the reservation ends, as a record."
    )
    async def lines(self, info: Info[Context, None]) -> list[ReservationLineType]:
        """One line per variant. Lines stay listed after the reservation ends."""
        lines = await info.context.loaders.reservation_lines.load(uuid.UUID(self.id))
        return [
            ReservationLineType(quantity=q, backordered_quantity=b, variant_id=v)
            for v, q, b in lines
        ]

    @described_field(
        "The lines at their variants' current prices (quantity times price, summed); null "
        "when the lines mix currencies. An order keeps the prices of its checkout instead "
        "(Order.total)."
    )
    async def subtotal(self, info: Info[Context, None]) -> MoneyType | None:
        """Sum of quantity times current variant price; None when currencies mix (or no line)."""
        lines = await info.context.loaders.reservation_lines.load(uuid.UUID(self.id))
        variants = await info.context.loaders.variant_by_id.load_many([v for v, _, _ in lines])
        currencies = {row.currency_code for row in variants if row is not None}
        if len(currencies) != 1 or any(row is None for row in variants):
            return None
        amount = sum(
            q * row.price_amount for (_, q, _), row in zip(lines, variants, strict=True) if row
        )
        return MoneyType.from_minor(amount, currencies.pop())


@strawberry.type(
    name="OrderLine", description="A variant of an order, with its unit price frozen at checkout."
)
class OrderLineType:
    """A variant of an order with its unit price frozen at checkout."""

    quantity: int = strawberry.field(description="Units ordered.")
    refunded_quantity: int = strawberry.field(description="Units refunded so far (0 to quantity).")
    backordered_quantity: int = strawberry.field(
        description="Units still waiting for stock; filled oldest paid order first as stock "
        "arrives (BACKORDER_FILL movements)."
    )
    unit_price: MoneyType = strawberry.field(
        description="Price of one unit at checkout; later price changes do not alter it."
    )
    variant_id: strawberry.Private[int]

    @described_field("The ordered variant.")
    async def variant(self, info: Info[Context, None]) -> VariantType:
        """The ordered variant."""
        return await load_variant(info, self.variant_id)


@strawberry.type(
    name="PaymentEvent",
    description="Something that happened to an order's payment: an attempt, a Stripe "
    "webhook event, a refund, a cancellation.",
)
class PaymentEventType:
    """Something that happened to an order's payment (attempt, webhook event, refund)."""

    type: str = strawberry.field(
        description="A Stripe event type (payment_intent.succeeded, "
        "payment_intent.payment_failed...) or one of ours: payment_intent.created, "
        "refund.created, order.cancelled."
    )
    provider_event_id: str | None = strawberry.field(
        description="Stripe's event or refund id (evt_..., re_...); null for local events."
    )
    detail: str | None = strawberry.field(
        description="Free text: a decline message, the PaymentIntent id, a refund reason."
    )
    occurred_at: datetime = strawberry.field(description="When it was recorded here.")


@strawberry.type(
    name="Order",
    description="An order made at checkout from a reservation. Admins read any order; a "
    "buyer reads theirs by passing its reservationId. Amounts are decimal Money.",
)
class OrderType:
    """An order made at checkout; amounts are decimal Money."""

    id: strawberry.ID = strawberry.field(description="The order's id (a UUID).")
    status: OrderStatus = strawberry.field(description="Where its payment stands.")
    payment_intent_id: str | None = strawberry.field(
        description="The Stripe PaymentIntent (pi_...), or the offline provider's local id."
    )
    email: str | None = strawberry.field(description="The buyer's email given at checkout.")
    attention_reason: str | None = strawberry.field(
        description="Why the order is NEEDS_ATTENTION (e.g. paid after its stock was gone)."
    )
    last_payment_error: str | None = strawberry.field(
        description="The provider's message for the latest failed payment attempt (e.g. card "
        "declined); the buyer may retry on the same payment."
    )
    created_at: datetime = strawberry.field(description="When checkout made it.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
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

    @described_field("The amount charged at checkout (lines at their unit prices).")
    def total(self) -> MoneyType:
        """The amount charged at checkout."""
        return MoneyType.from_minor(self.row["total_amount"], self.row["currency_code"])

    @described_field("The order's variants, one line per variant.")
    async def lines(self, info: Info[Context, None]) -> list[OrderLineType]:
        """The order's variants."""
        rows = await info.context.loaders.orders.order_lines.load(self.row["id"])
        return [
            OrderLineType(
                quantity=r["quantity"],
                refunded_quantity=r["refunded_quantity"],
                backordered_quantity=r["backordered_quantity"],
                unit_price=MoneyType.from_minor(r["unit_price_amount"], r["currency_code"]),
                variant_id=r["variant_id"],
            )
            for r in rows
        ]

    @described_field("The reservation the order was made from.")
    async def reservation(self, info: Info[Context, None]) -> ReservationType | None:
        """The reservation the order was made from."""
        if self.row["reservation_id"] is None:
            return None
        row = await info.context.loaders.orders.reservation_by_id.load(self.row["reservation_id"])
        return ReservationType.from_row(row) if row else None

    @described_field("Payment history, oldest first: why the order is in its status.")
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


@strawberry.type(
    name="StockMovement",
    description="A ledger row: one change of one stock level. The ledger is append-only; the "
    "level's onHand is the sum of its onHandDelta.",
)
class StockMovementType:
    """A ledger row: one change of one stock level."""

    id: strawberry.ID = strawberry.field(description="The row's id (grows with each insert).")
    kind: MovementKind = strawberry.field(description="Why the level changed.")
    sku: str = strawberry.field(description="The variant whose level changed.")
    on_hand_delta: int = strawberry.field(description="Change of onHand in units.")
    reserved_delta: int = strawberry.field(description="Change of reserved in units.")
    on_hand_after: int = strawberry.field(description="onHand after the change.")
    reserved_after: int = strawberry.field(description="reserved after the change.")
    version: int = strawberry.field(description="The level's version after this change.")
    reason: str | None = strawberry.field(
        description='Admin changes: the AdjustmentReason, then the note ("DAMAGED: dropped '
        'pallet"); refunds and late payments: why; otherwise null.'
    )
    reference: str | None = strawberry.field(
        description="reservation:<id>, order:<id> or the Stripe event it belongs to."
    )
    actor: str = strawberry.field(
        description='Who caused the change: "admin:<name>" (the admin\'s name from ADMIN_TOKENS; '
        'a bare token is "admin:token-<n>", never the token itself), "storefront" (anonymous '
        'callers), "stripe" (payment events), "system" (the expiry sweeper, reconciliation) or '
        '"import" (catalog imports). Rows written before this was recorded carry a best guess '
        '(migration 0005), "admin:unknown" for admin changes.'
    )
    from_state: StockState | None = strawberry.field(
        description="STATE_CHANGE only: the state the units left; null for other kinds."
    )
    to_state: StockState | None = strawberry.field(
        description="STATE_CHANGE only: the state the units entered; null for other kinds."
    )
    occurred_at: datetime = strawberry.field(description="When the change was made.")
    location_id: strawberry.Private[int]

    @described_field("Where the level is.")
    async def location(self, info: Info[Context, None]) -> LocationType:
        """Where the level is."""
        return await load_location(info, self.location_id)

    @classmethod
    def build(cls, m: AppliedMovement, sku: str) -> StockMovementType:
        """Build from a ledger row (`stock.movements.LedgerEntry` gives both)."""
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
            actor=m.actor,
            from_state=StockState(m.from_state) if m.from_state else None,
            to_state=StockState(m.to_state) if m.to_state else None,
            occurred_at=m.occurred_at,
            location_id=m.location_id,
        )
