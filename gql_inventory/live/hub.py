"""Live events of one process: the hub between the broadcast backend and websocket clients.

Each process keeps ONE backend subscription, whatever its number of clients, and
fans events out to per-subscriber bounded buffers itself. The hub assembles the
parts and runs them; each part is one module:

- `listener`: the backend subscription, its heartbeat and reconnection backoff;
- `catchup`: dispatch strictly in position order, gaps and polls read from the ledger;
- `subscribers`: the registry of stock and alert subscribers, and the fan-out;
- `orders`: `orderStatusChanged` watchers (announced after commit, polled as a backstop).

An event's location is read where queries read it (`readmodel.loaders`), not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.tasks import reap
from gql_inventory.live.buffers import EventBuffer
from gql_inventory.live.catchup import LedgerCatchUp
from gql_inventory.live.listener import Listener
from gql_inventory.live.orders import OrderWatch, OrderWatches
from gql_inventory.live.pubsub import PubSub
from gql_inventory.live.replay import ReplayGate, ReplayLimits
from gql_inventory.live.subscribers import AlertSubscriber, StockSubscriber, Subscribers
from gql_inventory.live.wire import StockEvent, encode_orders, encode_stock

log = get_logger(__name__)

#: How long a new subscription waits for a starting hub (seconds).
READY_TIMEOUT = 10.0


@dataclass
class HubSettings:
    """Tuning of a hub (from `Settings`); durations in seconds."""

    buffer_size: int = 256
    poll_seconds: float = 1.0
    heartbeat_seconds: float = 2.0
    order_poll_seconds: float = 2.0
    replay: ReplayLimits = field(default_factory=ReplayLimits)


class Hub:
    """One process's live events: backend subscription, ledger catch-up, fan-out."""

    def __init__(
        self, engine: AsyncEngine, pubsub: PubSub, channel: str, config: HubSettings
    ) -> None:
        self.engine = engine
        self.pubsub = pubsub
        self.channel = channel
        self.config = config
        self.subscribers = Subscribers(engine, config.buffer_size)
        self.orders = OrderWatches(engine, config.order_poll_seconds)
        self.listener = Listener(
            pubsub,
            channel,
            heartbeat_seconds=config.heartbeat_seconds,
            on_stock=self._on_stock,
            on_orders=self.orders.notify,
            on_subscribed=self._on_subscribed,
        )
        #: Called with each event, in position order, before subscribers get it (the
        #: read model's projection: `gql_inventory.readmodel.reads`).
        self.observers: list[Callable[[StockEvent], None]] = []
        self._subscribed_epoch = -1
        self._synced_epoch = -1
        self.catchup = LedgerCatchUp(
            engine,
            self._dispatch,
            on_progress=self.listener.touch,
            poll_seconds=config.poll_seconds,
        )
        #: Bounds on resuming from a cursor (window, budgets, chunks).
        self.replays = ReplayGate(engine, config.replay)
        self._tasks: list[asyncio.Task[None]] = []
        #: Events this process's relay positioned, on their way to this hub's catch-up.
        self._local: set[asyncio.Task[None]] = set()

    @property
    def position(self) -> int:
        """Ledger position of the last event dispatched."""
        return self.catchup.position

    @property
    def in_sync(self) -> bool:
        """True while subscribed to the backend and caught up from the ledger since that
        (re)subscription: every committed event reaches this hub, none is missing."""
        return self.pubsub.connected and self._synced_epoch == self.pubsub.epoch

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the backend listener and the ticker (they retry on their own)."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="live-hub-listen"),
            asyncio.create_task(self._tick(), name="live-hub-tick"),
        ]

    async def stop(self) -> None:
        """Stop the tasks, close every subscriber and the backend connection."""
        await reap([*self._tasks, *self._local])  # re-cancels: a library may swallow one
        self.subscribers.close_all("server shutting down")
        self.orders.close_feeds("server shutting down")
        await self.pubsub.close()

    async def wait_ready(self) -> bool:
        """True once the hub knows the ledger's position (it can serve subscribers);
        False when that takes more than `READY_TIMEOUT` seconds (database down)."""
        ready = self.catchup.ready
        if ready.is_set():
            return True
        # Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that races the
        # event being set (CPython gh-86296), which left closed connections' subscriptions
        # running forever. `asyncio.timeout` re-raises it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_TIMEOUT):
                await ready.wait()
        return ready.is_set()

    # ------------------------------------------------------------ subscribers

    def subscribe_stock(
        self,
        variant_ids: frozenset[int] | None,
        on_overflow: Callable[[str], None],
        *,
        replaying: bool = False,
        counted: bool = True,
    ) -> StockSubscriber:
        """Register a stock subscriber; it receives every event after `self.position`.
        `counted`: whether the subscribers gauge counts it (a shared group counts its
        members instead)."""
        return self.subscribers.subscribe_stock(
            variant_ids,
            on_overflow,
            start_position=self.position,
            replaying=replaying,
            counted=counted,
        )

    def unsubscribe_stock(self, sub: StockSubscriber) -> None:
        """Forget a stock subscriber (idempotent)."""
        self.subscribers.unsubscribe_stock(sub)

    def subscribe_alerts(self, on_overflow: Callable[[str], None]) -> AlertSubscriber:
        """Register a low-stock alert subscriber (alerts from the next event on)."""
        return self.subscribers.subscribe_alerts(on_overflow)

    def unsubscribe_alerts(self, sub: AlertSubscriber) -> None:
        """Forget an alert subscriber (idempotent)."""
        self.subscribers.unsubscribe_alerts(sub)

    def watch_order(self, order_id: uuid.UUID) -> OrderWatch:
        """Register interest in an order's status."""
        return self.orders.watch(order_id)

    def unwatch_order(self, watch: OrderWatch) -> None:
        """Forget an order watch (idempotent)."""
        self.orders.unwatch(watch)

    def subscribe_orders(self, on_overflow: Callable[[str], None]) -> EventBuffer[uuid.UUID]:
        """An `ordersChanged` feed: ids of orders whose status changes from now on."""
        return self.orders.feed(self.config.buffer_size, on_overflow)

    def unsubscribe_orders(self, feed: EventBuffer[uuid.UUID]) -> None:
        """Forget an `ordersChanged` feed (idempotent)."""
        self.orders.unfeed(feed)

    def replay(self, after: int, variant_ids: frozenset[int] | None) -> AsyncIterator[StockEvent]:
        """Ledger events after `after` (for a resuming subscriber), in chunks that yield
        to the loop (`replays`)."""
        return self.replays.events(after, variant_ids)

    # ------------------------------------------------------------ publishing

    async def publish_stock(self, events: Sequence[StockEvent]) -> None:
        """Broadcast positioned events (the relay's output) to every process, and hand them
        to this hub at once.

        This hub takes them in a task of its own, which runs while the broadcast is on its
        way: its fan-out does not wait for the backend's round trip (the echo is skipped:
        already dispatched), and the broadcast and the relay's next pass do not wait for
        its fan-out. Those tasks take the catch-up's lock in the order they were made, so
        in position order. The broadcast is skipped while the backend is down: every hub
        reads them from the ledger when it (re)subscribes, or at its next poll.
        """
        if self.catchup.ready.is_set():  # before that, the hub has no position to go on from
            task = asyncio.create_task(self._take_local(list(events)), name="live-hub-local")
            self._local.add(task)
            task.add_done_callback(self._local.discard)
        if not self.pubsub.connected:
            return
        for message in encode_stock(events):
            await self.pubsub.publish(self.channel, message)

    async def publish_orders(self, order_ids: Sequence[uuid.UUID]) -> None:
        """Broadcast that these orders' status changed (after commit)."""
        for message in encode_orders(order_ids):
            await self.pubsub.publish(self.channel, message)

    # ------------------------------------------------------------ tasks

    async def _on_stock(self, events: list[StockEvent]) -> None:
        await self.catchup.on_stock(events)

    async def _take_local(self, events: list[StockEvent]) -> None:
        try:
            await self.catchup.on_stock(events)
        except Exception as exc:  # the broadcast's echo, or the next poll, brings them
            log.warning("live.local_dispatch_failed", error=repr(exc), count=len(events))

    async def _dispatch(self, event: StockEvent) -> None:
        for observe in self.observers:
            observe(event)
        await self.subscribers.dispatch(event)

    async def _on_subscribed(self) -> None:
        self._subscribed_epoch = self.pubsub.epoch
        await self._sync("subscribed")

    async def _sync(self, why: str) -> None:
        """Catch up from the ledger; in sync with this subscription once that succeeded."""
        epoch = self._subscribed_epoch
        self._synced_epoch = -1
        if await self.catchup.catch_up(why):
            self._synced_epoch = epoch

    async def _listen(self) -> None:
        await self.catchup.init_position()
        await self.listener.run()

    async def _tick(self) -> None:
        await self.catchup.ready.wait()  # `_listen` sets the starting position
        interval = min(self.config.heartbeat_seconds, self.config.poll_seconds) / 2
        while True:
            await asyncio.sleep(interval)
            try:
                await self.listener.heartbeat()
                if self._subscribed_epoch == self.pubsub.epoch != self._synced_epoch:
                    await self._sync("resync")  # the catch-up after subscribing failed
                await self.catchup.poll()
                await self.orders.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live.tick_failed", error=repr(exc))
