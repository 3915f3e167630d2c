"""The process's one subscription to the broadcast backend: decode, heartbeat, reconnect.

Liveness of the backend is checked by heartbeats (broadcaster reports no lost
connections, `gql_inventory.live.pubsub`); a dead backend is reconnected with
backoff, and the ledger fills in whatever was missed meanwhile (`on_subscribed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.live.pubsub import PubSub, PubSubError
from gql_inventory.live.wire import (
    OrdersMessage,
    PingMessage,
    StockEvent,
    StockMessage,
    decode,
    encode_ping,
)

log = get_logger(__name__)


class Listener:
    """Reads `channel` and hands each message to its callback.

    - `on_stock(events)`: a run of positioned stock events;
    - `on_orders(order_ids)`: orders whose status changed;
    - `on_subscribed()`: after each (re)subscription, before reading (catch-up).

    `heartbeat_seconds`: quiet time after which a ping is sent; three times that
    without any message (not even our own ping) marks the backend lost.
    """

    def __init__(
        self,
        pubsub: PubSub,
        channel: str,
        *,
        heartbeat_seconds: float,
        on_stock: Callable[[list[StockEvent]], Awaitable[None]],
        on_orders: Callable[[list[uuid.UUID]], None],
        on_subscribed: Callable[[], Awaitable[None]],
    ) -> None:
        self.pubsub = pubsub
        self.channel = channel
        self.heartbeat_seconds = heartbeat_seconds
        self._on_stock = on_stock
        self._on_orders = on_orders
        self._on_subscribed = on_subscribed
        self._nonce = uuid.uuid4().hex
        self._last_rx = time.monotonic()
        self._last_ping = 0.0

    def touch(self) -> None:
        """Count the backend as alive now (e.g. while busy catching up from the ledger)."""
        self._last_rx = time.monotonic()

    async def run(self) -> None:
        """Subscribe and read until cancelled; on any failure mark the backend lost and
        retry after a backoff doubling from 0.1 up to 5 seconds."""
        delay = 0.0
        subscribed_before = False
        while True:
            try:
                if not self.pubsub.connected:
                    await self.pubsub.reconnect()
                async with self.pubsub.subscribe(self.channel) as subscription:
                    self._last_rx = time.monotonic()
                    if subscribed_before:
                        metrics.BACKEND_RECONNECTS.inc()
                        log.info("live.backend_reconnected", backend=self.pubsub.kind)
                    subscribed_before = True
                    await self._on_subscribed()
                    delay = 0.0
                    while True:
                        raw = await subscription.get()
                        self._last_rx = time.monotonic()
                        message = decode(raw)
                        if isinstance(message, StockMessage):
                            await self._on_stock(message.events)
                        elif isinstance(message, OrdersMessage):
                            self._on_orders(message.order_ids)
                        elif isinstance(message, PingMessage):
                            pass
                        else:
                            log.warning("live.unknown_message", size=len(raw))
            except asyncio.CancelledError:
                raise
            except PubSubError as exc:
                log.warning("live.backend_lost", error=str(exc), retry_in=delay)
            except Exception as exc:
                log.exception("live.listener_failed", error=repr(exc))
            self.pubsub.mark_lost("listener stopped")
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, 0.1), 5.0)

    async def heartbeat(self) -> None:
        """Ping the channel when it has been quiet; mark the backend lost when even the
        pings stopped coming back."""
        if not self.pubsub.connected:
            return
        now = time.monotonic()
        quiet = now - self._last_rx
        if quiet > 3 * self.heartbeat_seconds:
            self.pubsub.mark_lost(f"no message (not even our heartbeat) for {quiet:.1f}s")
            return
        if quiet > self.heartbeat_seconds and now - self._last_ping > self.heartbeat_seconds:
            self._last_ping = now
            with contextlib.suppress(PubSubError):
                await self.pubsub.publish(self.channel, encode_ping(self._nonce))
