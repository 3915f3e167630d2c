"""`orderStatusChanged` watchers of one process: woken by broadcast notices sent after
commit, and by a poll of the watched orders' status as a backstop; and the
`ordersChanged` feeds (admin), each a bounded buffer of every announced order id."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.kit import metrics
from gql_inventory.live.buffers import EventBuffer
from gql_inventory.models import Order


@dataclass(eq=False)
class OrderWatch:
    """An `orderStatusChanged` subscription: woken when the order may have changed."""

    order_id: uuid.UUID
    status: str | None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class OrderWatches:
    """The watched orders; `poll_seconds` is the least time between two status polls."""

    def __init__(self, engine: AsyncEngine, poll_seconds: float) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self._orders: dict[uuid.UUID, set[OrderWatch]] = {}
        self._feeds: set[EventBuffer[uuid.UUID]] = set()
        self._last_poll = time.monotonic()

    def watch(self, order_id: uuid.UUID) -> OrderWatch:
        """Register interest in an order's status."""
        watch = OrderWatch(order_id=order_id, status=None)
        self._orders.setdefault(order_id, set()).add(watch)
        metrics.SUBSCRIBERS.labels("orders").inc()
        return watch

    def unwatch(self, watch: OrderWatch) -> None:
        """Forget an order watch (idempotent)."""
        watches = self._orders.get(watch.order_id)
        if watches is not None and watch in watches:
            watches.discard(watch)
            metrics.SUBSCRIBERS.labels("orders").dec()
            if not watches:
                del self._orders[watch.order_id]

    def feed(self, size: int, on_overflow: Callable[[str], None]) -> EventBuffer[uuid.UUID]:
        """An `ordersChanged` feed: every order id announced from now on, in a buffer of
        at most `size` ids; on overflow it closes and calls `on_overflow(reason)`."""
        buffer = EventBuffer[uuid.UUID](size, on_overflow)
        self._feeds.add(buffer)
        metrics.SUBSCRIBERS.labels("orders_changed").inc()
        return buffer

    def unfeed(self, buffer: EventBuffer[uuid.UUID]) -> None:
        """Forget an `ordersChanged` feed (idempotent)."""
        if buffer in self._feeds:
            self._feeds.discard(buffer)
            metrics.SUBSCRIBERS.labels("orders_changed").dec()

    def close_feeds(self, reason: str) -> None:
        """Close every `ordersChanged` feed (their streams end with `reason`)."""
        for buffer in list(self._feeds):
            buffer.close(reason)

    def notify(self, order_ids: Iterable[uuid.UUID]) -> None:
        """These orders' status changed (a broadcast notice): wake their watchers, and
        queue the ids on every `ordersChanged` feed (a full feed closes itself)."""
        for order_id in order_ids:
            for watch in self._orders.get(order_id, ()):
                watch.changed.set()
            for buffer in list(self._feeds):
                buffer.offer(order_id)

    async def poll(self) -> None:
        """At most every `poll_seconds`: read the watched orders' status and wake the
        watchers whose order changed since they last looked."""
        if not self._orders:
            return
        if time.monotonic() - self._last_poll < self.poll_seconds:
            return
        self._last_poll = time.monotonic()
        ids = list(self._orders)
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(Order.id, Order.status).where(Order.id.in_(ids)))
            current = {r.id: str(getattr(r.status, "value", r.status)) for r in rows}
        for order_id, status in current.items():
            for watch in self._orders.get(order_id, ()):
                if watch.status is not None and watch.status != status:
                    watch.changed.set()
