"""Live events of one process: the hub between the broadcast backend and websocket clients.

Each process keeps ONE backend subscription (`Hub`), whatever its number of
clients, and fans events out to per-subscriber bounded buffers itself:

- Stock events arrive as runs of consecutive ledger positions (published by a
  relay, `gql_inventory.relay`). The hub dispatches strictly in position order;
  on a gap (lost message, reconnect, out-of-order publishers) it reads what is
  missing from the ledger first, so subscribers never see a hole. It also polls
  the ledger's top position as a backstop, so events arrive even while the
  backend is down.
- A subscriber whose buffer overflows is closed (`on_overflow`; the websocket
  layer closes the connection with a reason telling the client to resume with
  its cursor). Other subscribers are unaffected; memory per subscriber is bounded
  by the buffer size.
- Liveness of the backend is checked by heartbeats (broadcaster reports no
  lost connections); a dead backend is reconnected with backoff, and the
  ledger fills in whatever was missed meanwhile.
- Low-stock alerts are derived here, once per process, from consecutive events.
- Order status changes are announced after commit (and polled as a backstop).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory import metrics
from gql_inventory.alerts import AlertTracker, LowStockAlertEvent
from gql_inventory.buffers import EventBuffer
from gql_inventory.inventory.ledger import AppliedMovement
from gql_inventory.loaders import (
    LOCATION_COLUMNS,
    LocationRow,
    location_row,
)
from gql_inventory.logs import get_logger
from gql_inventory.models import Location, Order
from gql_inventory.pubsub import PubSub, PubSubError, backend_url
from gql_inventory.relay import Relay
from gql_inventory.stream import (
    OrdersMessage,
    PingMessage,
    StockEvent,
    StockMessage,
    channel_for,
    decode,
    encode_orders,
    encode_ping,
    encode_stock,
    max_position,
    read_after,
)

if TYPE_CHECKING:
    from gql_inventory.events import EventSink
    from gql_inventory.settings import Settings


class LiveServices(Protocol):
    """What live events use of `gql_inventory.services.Services`, named by shape so
    this module does not import `services` (which names `Hub`)."""

    settings: Settings
    database_url: str
    engine: AsyncEngine
    events: EventSink
    live: Hub | None


log = get_logger(__name__)

T = TypeVar("T")

#: Events read from the ledger per query (catch-up and replay).
LEDGER_PAGE = 500
#: How long a new subscription waits for a starting hub.
READY_TIMEOUT = 10.0


@dataclass(eq=False)
class StockSubscriber:
    """A `stockChanged` subscription: a variant filter (None: all) and its buffer."""

    variant_ids: frozenset[int] | None
    buffer: EventBuffer[StockEvent]
    start_position: int


@dataclass(eq=False)
class AlertSubscriber:
    """A `lowStockAlerts` subscription."""

    buffer: EventBuffer[LowStockAlertEvent]


@dataclass(eq=False)
class OrderWatch:
    """An `orderStatusChanged` subscription: woken when the order may have changed."""

    order_id: uuid.UUID
    status: str | None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class HubSettings:
    """Tuning of a hub (from `Settings`)."""

    buffer_size: int = 256
    poll_seconds: float = 1.0
    heartbeat_seconds: float = 2.0
    order_poll_seconds: float = 2.0
    location_ttl_seconds: float = 60.0


class Hub:
    """One process's live events: backend subscription, ledger catch-up, fan-out."""

    def __init__(
        self, engine: AsyncEngine, pubsub: PubSub, channel: str, config: HubSettings
    ) -> None:
        self.engine = engine
        self.pubsub = pubsub
        self.channel = channel
        self.config = config
        self.position = 0
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._nonce = uuid.uuid4().hex
        self._last_rx = time.monotonic()
        self._last_ping = 0.0
        self._last_poll = time.monotonic()
        self._last_order_poll = time.monotonic()
        self._all: set[StockSubscriber] = set()
        self._by_variant: dict[int, set[StockSubscriber]] = {}
        self._alert_subs: set[AlertSubscriber] = set()
        self._alerts = AlertTracker(engine)
        self._orders: dict[uuid.UUID, set[OrderWatch]] = {}
        self._locations: dict[int, LocationRow] = {}
        self._locations_at = 0.0
        self._locations_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the backend listener and the ticker (they retry on their own)."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="live-hub-listen"),
            asyncio.create_task(self._tick(), name="live-hub-tick"),
        ]

    async def stop(self) -> None:
        """Stop the tasks, close every subscriber and the backend connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sub in list(self._all) + [s for v in self._by_variant.values() for s in v]:
            sub.buffer.close("server shutting down")
        for alert_sub in self._alert_subs:
            alert_sub.buffer.close("server shutting down")
        await self.pubsub.close()

    async def wait_ready(self) -> bool:
        """True once the hub knows the ledger's position (it can serve subscribers);
        False when that takes more than `READY_TIMEOUT` seconds (database down)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT)
        return self._ready.is_set()

    # ------------------------------------------------------------ subscribers

    def subscribe_stock(
        self,
        variant_ids: frozenset[int] | None,
        on_overflow: Callable[[str], None],
        *,
        replaying: bool = False,
    ) -> StockSubscriber:
        """Register a stock subscriber; it receives every event after `self.position`."""
        sub = StockSubscriber(
            variant_ids=variant_ids,
            buffer=EventBuffer(self.config.buffer_size, on_overflow, replaying=replaying),
            start_position=self.position,
        )
        if variant_ids is None:
            self._all.add(sub)
        else:
            for variant_id in variant_ids:
                self._by_variant.setdefault(variant_id, set()).add(sub)
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
        if found:
            metrics.SUBSCRIBERS.labels("stock").dec()

    def subscribe_alerts(self, on_overflow: Callable[[str], None]) -> AlertSubscriber:
        """Register a low-stock alert subscriber (alerts from the next event on)."""
        sub = AlertSubscriber(EventBuffer(self.config.buffer_size, on_overflow))
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

    def watch_order(self, order_id: uuid.UUID) -> OrderWatch:
        """Register interest in an order's status."""
        watch = OrderWatch(order_id=order_id, status=None)
        self._orders.setdefault(order_id, set()).add(watch)
        metrics.SUBSCRIBERS.labels("orders").inc()
        return watch

    def unwatch_order(self, watch: OrderWatch) -> None:
        """Forget an order watch (idempotent)."""
        watches = self._orders.get(watch.order_id)
        if watches is not None and watch in watches:
            watches.discard(watch)
            metrics.SUBSCRIBERS.labels("orders").dec()
            if not watches:
                del self._orders[watch.order_id]

    async def replay(
        self, after: int, variant_ids: frozenset[int] | None
    ) -> AsyncIterator[list[StockEvent]]:
        """Pages of ledger events after `after` (for a resuming subscriber)."""
        ids = sorted(variant_ids) if variant_ids is not None else None
        while True:
            async with self.engine.connect() as conn:
                page = await read_after(conn, after, limit=LEDGER_PAGE, variant_ids=ids)
            if page:
                yield page
                after = page[-1].position
            if len(page) < LEDGER_PAGE:
                return

    async def location(self, location_id: int) -> LocationRow:
        """A location by id, from a per-process cache refreshed every minute."""
        row = self._locations.get(location_id)
        fresh = time.monotonic() - self._locations_at < self.config.location_ttl_seconds
        if row is not None and fresh:
            return row
        async with self._locations_lock:
            row = self._locations.get(location_id)
            fresh = time.monotonic() - self._locations_at < self.config.location_ttl_seconds
            if row is None or not fresh:
                async with self.engine.connect() as conn:
                    rows = await conn.execute(select(*LOCATION_COLUMNS).order_by(Location.id))
                    self._locations = {r.id: location_row(r._mapping) for r in rows}
                self._locations_at = time.monotonic()
                row = self._locations.get(location_id)
        if row is None:  # pragma: no cover - a foreign key makes this impossible
            raise LookupError(f"location {location_id} vanished")
        return row

    # ------------------------------------------------------------ publishing

    async def publish_stock(self, events: Sequence[StockEvent]) -> None:
        """Broadcast positioned events to every process (the relay's output).

        Skipped while the backend is down: every hub reads them from the ledger when
        it (re)subscribes, or at its next poll.
        """
        if not self.pubsub.connected:
            return
        for message in encode_stock(events):
            await self.pubsub.publish(self.channel, message)

    async def publish_orders(self, order_ids: Sequence[uuid.UUID]) -> None:
        """Broadcast that these orders' status changed (after commit)."""
        for message in encode_orders(order_ids):
            await self.pubsub.publish(self.channel, message)

    # ------------------------------------------------------------ dispatch

    async def _dispatch(self, event: StockEvent) -> None:
        self.position = event.position
        metrics.HUB_POSITION.set(event.position)
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

    async def _catch_up_locked(self, why: str) -> None:
        """Dispatch every ledger event after `self.position` (caller holds `_lock`)."""
        start = self.position
        try:
            while True:
                async with self.engine.connect() as conn:
                    page = await read_after(conn, self.position, limit=LEDGER_PAGE)
                self._last_rx = time.monotonic()  # busy catching up is not a dead backend
                for event in page:
                    if event.position != self.position + 1:  # pragma: no cover - gap-free
                        log.error("live.ledger_gap", at=self.position, got=event.position)
                        return
                    await self._dispatch(event)
                if len(page) < LEDGER_PAGE:
                    break
        except Exception as exc:
            log.warning("live.catch_up_failed", error=repr(exc), why=why)
        if self.position != start:
            metrics.LEDGER_CATCH_UPS.inc()
            log.info("live.caught_up", why=why, start=start, position=self.position)

    async def _on_stock(self, events: list[StockEvent]) -> None:
        async with self._lock:
            self._last_poll = time.monotonic()
            for event in sorted(events, key=lambda e: e.position):
                if event.position <= self.position:
                    continue  # already dispatched (read from the ledger earlier)
                if event.position != self.position + 1:
                    await self._catch_up_locked("gap")
                    if event.position <= self.position:
                        continue
                    if event.position != self.position + 1:
                        log.warning("live.gap_unresolved", at=self.position, got=event.position)
                        return
                await self._dispatch(event)

    def _on_orders(self, order_ids: list[uuid.UUID]) -> None:
        for order_id in order_ids:
            for watch in self._orders.get(order_id, ()):
                watch.changed.set()

    # ------------------------------------------------------------ tasks

    async def _init_position(self) -> None:
        while not self._ready.is_set():
            try:
                async with self.engine.connect() as conn:
                    self.position = await max_position(conn)
                metrics.HUB_POSITION.set(self.position)
                self._ready.set()
            except Exception as exc:
                log.warning("live.database_unavailable", error=repr(exc))
                await asyncio.sleep(self.config.poll_seconds)

    async def _listen(self) -> None:
        await self._init_position()
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
                    async with self._lock:
                        await self._catch_up_locked("subscribed")
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

    async def _tick(self) -> None:
        await self._ready.wait()  # `_listen` sets the starting position
        interval = min(self.config.heartbeat_seconds, self.config.poll_seconds) / 2
        while True:
            await asyncio.sleep(interval)
            try:
                await self._heartbeat()
                await self._poll_ledger()
                await self._poll_orders()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live.tick_failed", error=repr(exc))

    async def _heartbeat(self) -> None:
        if not self.pubsub.connected:
            return
        now = time.monotonic()
        quiet = now - self._last_rx
        if quiet > 3 * self.config.heartbeat_seconds:
            self.pubsub.mark_lost(f"no message (not even our heartbeat) for {quiet:.1f}s")
            return
        if quiet > self.config.heartbeat_seconds and now - self._last_ping > (
            self.config.heartbeat_seconds
        ):
            self._last_ping = now
            with contextlib.suppress(PubSubError):
                await self.pubsub.publish(self.channel, encode_ping(self._nonce))

    async def _poll_ledger(self) -> None:
        if time.monotonic() - self._last_poll < self.config.poll_seconds:
            return
        self._last_poll = time.monotonic()
        async with self.engine.connect() as conn:
            top = await max_position(conn)
        if top == self.position:
            return
        async with self._lock:
            if top < self.position:
                log.warning("live.ledger_rewound", position=self.position, top=top)
                self.position = top
                return
            await self._catch_up_locked("poll")

    async def _poll_orders(self) -> None:
        if not self._orders:
            return
        if time.monotonic() - self._last_order_poll < self.config.order_poll_seconds:
            return
        self._last_order_poll = time.monotonic()
        ids = list(self._orders)
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(Order.id, Order.status).where(Order.id.in_(ids)))
            current = {r.id: str(getattr(r.status, "value", r.status)) for r in rows}
        for order_id, status in current.items():
            for watch in self._orders.get(order_id, ()):
                if watch.status is not None and watch.status != status:
                    watch.changed.set()


class BroadcastSink:
    """`Services.events` while live events run: wakes the relay after each commit that
    wrote movements, and announces order status changes."""

    def __init__(self, hub: Hub, relay: Relay) -> None:
        self._hub = hub
        self._relay = relay

    async def publish(self, movements: Sequence[AppliedMovement]) -> None:
        """Movements were committed: the relay positions and publishes them."""
        if movements:
            self._relay.wake()

    async def publish_order_changes(self, order_ids: Sequence[uuid.UUID]) -> None:
        """Orders' status changed (committed): wake their watchers in every process."""
        if not order_ids:
            return
        try:
            await self._hub.publish_orders(order_ids)
        except PubSubError as exc:  # watchers poll as a backstop
            log.warning("live.order_publish_failed", error=repr(exc))


def hub_settings(services: LiveServices) -> HubSettings:
    """The hub's tuning from the service settings."""
    s = services.settings
    return HubSettings(
        buffer_size=s.subscriber_buffer_size,
        poll_seconds=s.live_poll_seconds,
        heartbeat_seconds=s.broadcast_heartbeat_seconds,
        order_poll_seconds=max(s.live_poll_seconds, 1.0),
    )


@contextlib.asynccontextmanager
async def live_events(services: LiveServices) -> AsyncIterator[Hub]:
    """Run the hub and the relay for the duration of the block (the app's lifespan).

    Sets `services.live` and makes `services.events` the broadcast sink; restores
    both on exit.
    """
    settings = services.settings
    pubsub = PubSub(backend_url(settings.broadcast_url, services.database_url))
    hub = Hub(services.engine, pubsub, channel_for(services.database_url), hub_settings(services))
    relay = Relay(services.engine, hub.publish_stock, poll_seconds=settings.live_poll_seconds)
    previous_sink = services.events
    await hub.start()
    relay_task = asyncio.create_task(relay.run(), name="live-relay")
    relay.wake()
    services.live = hub
    services.events = BroadcastSink(hub, relay)
    log.info("live.started", backend=pubsub.kind, channel=hub.channel)
    try:
        yield hub
    finally:
        services.events = previous_sink
        services.live = None
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await relay_task
        await hub.stop()
        log.info("live.stopped")


def live_events_if_enabled(
    services: LiveServices,
) -> contextlib.AbstractAsyncContextManager[Hub | None]:
    """`live_events(services)` unless the `LIVE_EVENTS` setting turns them off."""
    if services.settings.live_events:
        return live_events(services)
    return contextlib.nullcontext()
