"""`RecordingSink`: an event sink that keeps what a unit of work publishes after commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from gql_inventory.stock.ledger import AppliedMovement


class RecordingSink:
    """Keeps what the unit of work (`run_in_transaction`) publishes after commit:
    applied stock movements, and the ids of orders whose status changed."""

    def __init__(self) -> None:
        self.movements: list[AppliedMovement] = []
        self.orders: list[uuid.UUID] = []

    async def publish(self, movements: Sequence[AppliedMovement]) -> None:
        self.movements.extend(movements)

    async def publish_order_changes(self, order_ids: Sequence[uuid.UUID]) -> None:
        self.orders.extend(order_ids)
