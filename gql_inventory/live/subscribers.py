"""The registry of one process's stock and alert subscribers, and the fan-out of each event.

A subscriber whose buffer overflows is dropped (its buffer calls `on_overflow`; the
websocket layer closes the connection with a reason telling the client to resume
with its cursor). Other subscribers are unaffected; memory per subscriber is
bounded by the buffer size. Low-stock alerts are derived here, once per process,
from consecutive events, and only while someone listens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.live.alerts import AlertTracker, LowStockAlertEvent
from gql_inventory.live.buffers import EventBuffer
from gql_inventory.live.wire import StockEvent

log = get_logger(__name__)


@dataclass(eq=False)
class StockSubscriber:
    """A `stockChanged` subscription: a variant filter (None: all) and its buffer."""

    variant_ids: frozenset[int] | None
    buffer: EventBuffer[StockEvent]
    start_position: int
    counted: bool = True


@dataclass(eq=False)
class AlertSubscriber:
    """A `lowStockAlerts` subscription."""

    buffer: EventBuffer[LowStockAlertEvent]


class Subscribers:
    """Stock subscribers (indexed by variant) and alert subscribers of one process."""

    def __init__(self, engine: AsyncEngine, buffer_size: int) -> None:
        self.buffer_size = buffer_size
        self._all: set[StockSubscriber] = set()
        self._by_variant: dict[int, set[StockSubscriber]] = {}
        self._alert_subs: set[AlertSubscriber] = set()
        self._alerts = AlertTracker(engine)

    def subscribe_stock(
        self,
        variant_ids: frozenset[int] | None,
        on_overflow: Callable[[str], None],
        *,
        start_position: int,
        replaying: bool = False,
        counted: bool = True,
    ) -> StockSubscriber:
        """Register a stock subscriber; it receives every event dispatched from now on
        (those after `start_position`, the last one dispatched). `counted`: whether the
        `gql_inventory_subscribers` gauge counts it (a shared group counts its members)."""
        sub = StockSubscriber(
            variant_ids=variant_ids,
            buffer=EventBuffer(self.buffer_size, on_overflow, replaying=replaying),
            start_position=start_position,
            counted=counted,
        )
        if variant_ids is None:
            self._all.add(sub)
        else:
            for variant_id in variant_ids:
                self._by_variant.setdefault(variant_id, set()).add(sub)
        if counted:
            metrics.SUBSCRIBERS.labels("stock").inc()
        return sub

    def unsubscribe_stock(self, sub: StockSubscriber) -> None:
        """Forget a stock subscriber (idempotent)."""
        sub.buffer.close("unsubscribed")
        found = False
        if sub.variant_ids is None:
            found = sub in self._all
            self._all.discard(sub)
        else:
            for variant_id in sub.variant_ids:
                subs = self._by_variant.get(variant_id)
                if subs is not None and sub in subs:
                    found = True
                    subs.discard(sub)
                    if not subs:
                        del self._by_variant[variant_id]
        if found and sub.counted:
            metrics.SUBSCRIBERS.labels("stock").dec()

    def subscribe_alerts(self, on_overflow: Callable[[str], None]) -> AlertSubscriber:
        """Register a low-stock alert subscriber (alerts from the next event on)."""
        sub = AlertSubscriber(EventBuffer(self.buffer_size, on_overflow))
        self._alert_subs.add(sub)
        metrics.SUBSCRIBERS.labels("alerts").inc()
        return sub

    def unsubscribe_alerts(self, sub: AlertSubscriber) -> None:
        """Forget an alert subscriber (idempotent)."""
        sub.buffer.close("unsubscribed")
        if sub in self._alert_subs:
            self._alert_subs.discard(sub)
            metrics.SUBSCRIBERS.labels("alerts").dec()
            if not self._alert_subs:
                self._alerts.clear()

    def close_all(self, reason: str) -> None:
        """Close every subscriber's buffer (their streams end with `reason`)."""
        for sub in list(self._all) + [s for v in self._by_variant.values() for s in v]:
            sub.buffer.close(reason)
        for alert_sub in self._alert_subs:
            alert_sub.buffer.close(reason)

    async def dispatch(self, event: StockEvent) -> None:
        """Offer `event` to its subscribers, and its low-stock alert (if any) to the alert
        subscribers; drop those whose buffer overflowed."""
        for sub in list(self._all):
            if not sub.buffer.offer(event):
                self.unsubscribe_stock(sub)
        for sub in list(self._by_variant.get(event.variant_id, ())):
            if not sub.buffer.offer(event):
                self.unsubscribe_stock(sub)
        if self._alert_subs:
            try:
                alert = await self._alerts.apply(event)
            except Exception as exc:  # an alert is not worth stalling the stream
                log.warning("live.alert_failed", error=repr(exc), position=event.position)
                self._alerts.clear()
                alert = None
            if alert is not None:
                for alert_sub in list(self._alert_subs):
                    if not alert_sub.buffer.offer(alert):
                        self.unsubscribe_alerts(alert_sub)
        # Let subscribers drain before the next event: a burst (a big transaction, a
        # catch-up page) must not overflow the buffers of clients that keep up.
        await asyncio.sleep(0)
