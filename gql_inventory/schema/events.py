"""Event types of the subscriptions: StockChangeEvent, LowStockAlert."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.live.alerts import LowStockAlertEvent
from gql_inventory.live.wire import StockEvent
from gql_inventory.readmodel.loaders import Loaders
from gql_inventory.schema.catalog import LocationType, VariantType
from gql_inventory.schema.docs import described_field
from gql_inventory.schema.enums import LowStockState, MovementKind


@strawberry.type(
    name="StockChangeEvent",
    description="One committed change of one stock level (one ledger row), with the "
    "level's figures after it. Figures are whole units at that one location.",
)
class StockChangeEventType:
    """One committed change of one stock level, with the level's figures after it."""

    cursor: str = strawberry.field(
        description="Pass as `after` to resume from here (after a disconnect)."
    )
    sku: str = strawberry.field(description="The variant whose level changed.")
    kind: MovementKind = strawberry.field(description="Why it changed.")
    on_hand_delta: int = strawberry.field(description="Change of onHand (negative: fewer).")
    reserved_delta: int = strawberry.field(description="Change of reserved (negative: fewer).")
    on_hand: int = strawberry.field(description="Units at the location after the change.")
    reserved: int = strawberry.field(description="Units reserved there after the change.")
    available: int = strawberry.field(description="onHand - reserved, after the change.")
    version: int = strawberry.field(
        description="The level's version after this change: consecutive per level, so a "
        "client can tell that it missed something."
    )
    occurred_at: datetime = strawberry.field(
        description="When the change was made (its transaction's time, UTC offset included)."
    )
    movement_id: strawberry.ID = strawberry.field(description="The ledger row (StockMovement.id).")
    location_id: strawberry.Private[int]

    @described_field("Where the level is.")
    async def location(self, info: Info[Context, None]) -> LocationType:
        """Where the level is: read as queries read it (the catalog snapshot while it is
        trusted, else the database), with loaders of its own, since a subscription's
        context lives as long as its connection and must not keep an old row."""
        row = await Loaders.of(info.context.services).location_by_id.load(self.location_id)
        if row is None:  # pragma: no cover - a foreign key makes this impossible
            raise LookupError(f"location {self.location_id} vanished")
        return LocationType.from_row(row)

    @classmethod
    def from_event(cls, event: StockEvent) -> StockChangeEventType:
        """Build from a positioned ledger event."""
        return cls(
            cursor=event.cursor,
            sku=event.sku,
            kind=MovementKind(event.kind),
            on_hand_delta=event.on_hand_delta,
            reserved_delta=event.reserved_delta,
            on_hand=event.on_hand,
            reserved=event.reserved,
            available=event.available,
            version=event.version,
            occurred_at=event.occurred_at,
            movement_id=strawberry.ID(str(event.movement_id)),
            location_id=event.location_id,
        )


@strawberry.type(
    name="LowStockAlert",
    description="A variant's available units (summed over locations) crossed its threshold "
    "or zero. One alert per crossing, not per change.",
)
class LowStockAlertType:
    """A variant's available units (summed over locations) crossed its threshold or zero."""

    variant: VariantType = strawberry.field(description="The variant, with its figures now.")
    available: int = strawberry.field(
        description="Available units, summed over locations, after the change."
    )
    threshold: int = strawberry.field(description="The variant's lowStockThreshold (units).")
    state: LowStockState = strawberry.field(description="The boundary crossed.")
    occurred_at: datetime = strawberry.field(description="When the crossing change was made.")

    @classmethod
    def from_event(cls, alert: LowStockAlertEvent) -> LowStockAlertType:
        """Build from the hub's alert."""
        return cls(
            variant=VariantType.from_row(alert.variant),
            available=alert.available,
            threshold=alert.threshold,
            state=LowStockState(alert.state),
            occurred_at=alert.occurred_at,
        )
