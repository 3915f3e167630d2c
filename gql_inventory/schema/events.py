"""Event types of the subscriptions: StockChangeEvent, LowStockAlert."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from gql_inventory.alerts import LowStockAlertEvent
from gql_inventory.context import Context
from gql_inventory.schema.catalog import LocationType, VariantType
from gql_inventory.schema.enums import LowStockState, MovementKind
from gql_inventory.stream import StockEvent


@strawberry.type(name="StockChangeEvent")
class StockChangeEventType:
    """One committed change of one stock level, with the level's figures after it."""

    cursor: str = strawberry.field(
        description="Pass as `after` to resume from here (after a disconnect)."
    )
    sku: str
    kind: MovementKind
    on_hand_delta: int
    reserved_delta: int
    on_hand: int
    reserved: int
    available: int = strawberry.field(description="onHand - reserved")
    version: int = strawberry.field(
        description="The level's version after this change: consecutive per level, so a "
        "client can tell that it missed something."
    )
    occurred_at: datetime
    movement_id: strawberry.ID = strawberry.field(description="The ledger row (StockMovement.id).")
    location_id: strawberry.Private[int]

    @strawberry.field
    async def location(self, info: Info[Context, None]) -> LocationType:
        """Where the level is."""
        hub = info.context.services.live
        if hub is None:  # pragma: no cover - events only flow while the hub runs
            raise LookupError("live events are not running")
        return LocationType.from_row(await hub.location(self.location_id))

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


@strawberry.type(name="LowStockAlert")
class LowStockAlertType:
    """A variant's available units (summed over locations) crossed its threshold or zero."""

    variant: VariantType
    available: int = strawberry.field(description="Summed over locations, after the change.")
    threshold: int
    state: LowStockState
    occurred_at: datetime

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
