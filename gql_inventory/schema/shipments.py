"""Inbound shipment types: the shipment, its lines, its page, its inputs and payload
(docs/stock.md, "Inbound shipments")."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from sqlalchemy import RowMapping
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.models import InboundShipmentStatus
from gql_inventory.schema.catalog import LocationType, VariantType, load_location
from gql_inventory.schema.connections import PageInfo
from gql_inventory.schema.docs import describe_enum, described_field
from gql_inventory.schema.inputs import StockLineInput
from gql_inventory.schema.orders import load_variant
from gql_inventory.schema.payloads import UserError

__all__ = [
    "CreateInboundShipmentInput",
    "InboundShipmentConnection",
    "InboundShipmentEdge",
    "InboundShipmentLineType",
    "InboundShipmentPayload",
    "InboundShipmentStatus",
    "InboundShipmentType",
    "ReceiveInboundShipmentInput",
]

_ADMIN_IDEMPOTENCY_KEY = (
    "Optional. Reuse the same key when retrying: the same key with the same input returns the "
    "first call's result without doing it again; with another input it is "
    "IDEMPOTENCY_CONFLICT. 1 to 255 characters, scoped to the calling admin."
)

describe_enum(
    InboundShipmentStatus,
    description="Where an inbound shipment stands. OPEN and PARTIALLY_RECEIVED still expect "
    "units (they count in `incoming`); RECEIVED and CANCELLED are final.",
    values={
        "OPEN": "Created; nothing received yet.",
        "PARTIALLY_RECEIVED": "Some units received (RECEIPT movements), others still expected.",
        "RECEIVED": "Every expected unit was received.",
        "CANCELLED": "What was still expected will not come (no longer incoming); units "
        "received before stay on hand.",
    },
)


@strawberry.type(
    name="InboundShipmentLine",
    description="Units of one variant expected on an inbound shipment, and how many arrived.",
)
class InboundShipmentLineType:
    """Units of one variant expected on a shipment, and how many arrived."""

    quantity_expected: int = strawberry.field(description="Units expected (at least 1).")
    quantity_received: int = strawberry.field(
        description="Units received so far, 0 to quantityExpected. Still incoming while the "
        "shipment is open: quantityExpected - quantityReceived."
    )
    variant_id: strawberry.Private[int]

    @described_field("The expected variant.")
    async def variant(self, info: Info[Context, None]) -> VariantType:
        """The expected variant."""
        return await load_variant(info, self.variant_id)


@strawberry.type(
    name="InboundShipment",
    description="Stock on its way to one location (a purchase order, a transfer): its open "
    "lines' remaining units are the location's `incoming`. Received with "
    "receiveInboundShipment (RECEIPT movements with reference shipment:<id>), stopped with "
    "cancelInboundShipment.",
)
class InboundShipmentType:
    """Stock expected at one location."""

    id: strawberry.ID = strawberry.field(description="A UUID.")
    reference: str | None = strawberry.field(
        description="The supplier's or shop's own number, as given at creation."
    )
    status: InboundShipmentStatus = strawberry.field(description="Where it stands.")
    expected_at: datetime | None = strawberry.field(
        description="When it is expected to arrive, as given at creation; null: unknown."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    db_id: strawberry.Private[uuid.UUID]
    location_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: RowMapping) -> InboundShipmentType:
        """Build from an `inbound_shipments` row."""
        return cls(
            id=strawberry.ID(str(row["id"])),
            reference=row["reference"],
            status=InboundShipmentStatus(row["status"]),
            expected_at=row["expected_at"],
            created_at=row["created_at"],
            db_id=row["id"],
            location_id=row["location_id"],
        )

    @described_field("The location receiving the units.")
    async def location(self, info: Info[Context, None]) -> LocationType:
        """The location receiving the units."""
        return await load_location(info, self.location_id)

    @described_field("One line per variant, in the order given at creation.")
    async def lines(self, info: Info[Context, None]) -> list[InboundShipmentLineType]:
        """One line per variant, in created order."""
        rows = await info.context.loaders.shipments.lines.load(self.db_id)
        return [
            InboundShipmentLineType(
                quantity_expected=r["quantity_expected"],
                quantity_received=r["quantity_received"],
                variant_id=r["variant_id"],
            )
            for r in rows
        ]


@strawberry.type(name="InboundShipmentEdge", description="An inbound shipment with its cursor.")
class InboundShipmentEdge:
    """An inbound shipment with its cursor."""

    cursor: str = strawberry.field(
        description="Opaque; pass as `inboundShipments(after:)` to read on with older ones."
    )
    node: InboundShipmentType = strawberry.field(description="The shipment.")


@strawberry.type(
    name="InboundShipmentConnection",
    description="A page of inbound shipments, newest first (createdAt, then id).",
)
class InboundShipmentConnection:
    """A page of inbound shipments, newest first."""

    edges: list[InboundShipmentEdge] = strawberry.field(description="The shipments of this page.")
    page_info: PageInfo = strawberry.field(description="Whether older shipments follow.")
    total_count: int = strawberry.field(
        description="How many shipments match the filter in all, on every page together."
    )


@strawberry.input(description="Admin: stock expected at one location (createInboundShipment).")
class CreateInboundShipmentInput:
    """Admin: a new OPEN inbound shipment."""

    lines: list[StockLineInput] = strawberry.field(
        description="1 to 1000 lines, one per SKU, each 1 to 1000000 units expected."
    )
    location_id: strawberry.ID | None = strawberry.field(
        default=None, description="Location.id receiving it; null: the default location."
    )
    reference: str | None = strawberry.field(
        default=None, description="The supplier's or shop's own number, up to 255 characters."
    )
    expected_at: datetime | None = strawberry.field(
        default=None,
        description="When it should arrive (ISO 8601 with offset); the earliest open one is "
        "Variant.nextIncomingAt.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_ADMIN_IDEMPOTENCY_KEY)


@strawberry.input(
    description="Admin: units of an inbound shipment that arrived (receiveInboundShipment)."
)
class ReceiveInboundShipmentInput:
    """Admin: receive some or all of a shipment's units."""

    shipment_id: strawberry.ID = strawberry.field(description="InboundShipment.id.")
    lines: list[StockLineInput] | None = strawberry.field(
        default=None,
        description="Units that arrived per SKU, each SKU on the shipment and at most what its "
        "line still expects; null: everything still expected.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_ADMIN_IDEMPOTENCY_KEY)


@strawberry.type(description="The inbound shipment after a shipment mutation.")
class InboundShipmentPayload:
    """The shipment, or why not."""

    shipment: InboundShipmentType | None = strawberry.field(
        description="The shipment as committed; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why the operation was refused; empty on success. A refusal changes "
        "nothing (the transaction is rolled back)."
    )
