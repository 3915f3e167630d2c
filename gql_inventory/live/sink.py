"""Where committed stock movements (and order status changes) go after their transaction
commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from gql_inventory.stock.ledger import AppliedMovement


class EventSink(Protocol):
    """Receives the movements of a committed transaction, in ledger order."""

    async def publish(self, movements: Sequence[AppliedMovement]) -> None:
        """Deliver `movements` (already committed) to subscribers."""
        ...

    async def publish_order_changes(self, order_ids: Sequence[uuid.UUID]) -> None:
        """Tell `orderStatusChanged` subscribers that these orders' status changed."""
        ...


class DiscardingSink:
    """A sink for processes that serve no subscriptions (CLI commands, some tests).

    Subscribers never miss anything by it: they read the ledger on (re)connect.
    """

    async def publish(self, movements: Sequence[AppliedMovement]) -> None:
        """Drop the movements."""

    async def publish_order_changes(self, order_ids: Sequence[uuid.UUID]) -> None:
        """Drop the notice (order watchers also poll)."""
