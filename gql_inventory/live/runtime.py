"""The live-events runtime of one process: the hub, the relay and the broadcast
connection, built once with the `Services` and run for as long as the app serves.

`LiveEvents` is also `Services.events` (the `EventSink` every unit of work publishes
to): while it runs, a commit that wrote movements wakes the relay and order status
changes are announced to every process; before `start()` and after `stop()` it drops
them, like `DiscardingSink` (subscribers read the ledger on (re)connect, and the
relay of a running process positions what was committed meanwhile within a poll).
Building it opens nothing: processes that never start it (tests without the app's
lifespan) never reach the broadcast backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.tasks import stop_task
from gql_inventory.live.hub import Hub, HubSettings
from gql_inventory.live.pubsub import PubSub, PubSubError, backend_url
from gql_inventory.live.relay import Relay
from gql_inventory.live.replay import ReplayLimits
from gql_inventory.live.wire import channel_for
from gql_inventory.readmodel.reads import ReadModel

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gql_inventory.settings import Settings
    from gql_inventory.stock.ledger import AppliedMovement


log = get_logger(__name__)


def hub_settings(settings: Settings) -> HubSettings:
    """The hub's tuning from the service settings (durations in seconds)."""
    return HubSettings(
        buffer_size=settings.subscriber_buffer_size,
        poll_seconds=settings.live_poll_seconds,
        heartbeat_seconds=settings.broadcast_heartbeat_seconds,
        order_poll_seconds=max(settings.live_poll_seconds, 1.0),
        replay=ReplayLimits(
            max_events=settings.replay_max_events,
            max_events_admin=settings.replay_max_events_admin,
            concurrency=settings.replay_concurrency,
            queue_seconds=settings.replay_queue_seconds,
            chunk_events=settings.replay_chunk_events,
        ),
    )


class LiveEvents:
    """The hub, the relay and the broadcast connection of one process (built, not started).

    The backend is `settings.broadcast_url`, else LISTEN/NOTIFY on `database_url`
    (`gql_inventory.live.pubsub.backend_url`); an unsupported URL scheme raises
    `ValueError` here, when the app is built. `start()` / `stop()` (or `run()`, for
    the app's lifespan) run it once; it is not restarted.
    """

    def __init__(self, engine: AsyncEngine, database_url: str, settings: Settings) -> None:
        self.pubsub = PubSub(backend_url(settings.broadcast_url, database_url))
        self.hub = Hub(engine, self.pubsub, channel_for(database_url), hub_settings(settings))
        self.relay = Relay(engine, self.hub.publish_stock, poll_seconds=settings.live_poll_seconds)
        #: The stock projection and catalog snapshot reads are served from (None with
        #: `STOCK_PROJECTION` off): docs/adr/0009-stock-projection.md.
        self.reads: ReadModel | None = None
        if settings.stock_projection:
            self.reads = ReadModel(
                engine,
                hub_ready=self.hub.catchup.ready,
                in_sync=lambda: self.hub.in_sync,
                poll_seconds=settings.live_poll_seconds,
            )
            self.hub.observers.append(self.reads.apply_event)
        self._relay_task: asyncio.Task[None] | None = None
        self._reads_task: asyncio.Task[None] | None = None
        self._running = False
        self._started = False

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._running

    @property
    def running_hub(self) -> Hub | None:
        """The hub while the runtime runs (subscriptions are served from it), else None."""
        return self.hub if self._running else None

    async def start(self) -> None:
        """Start the hub (backend subscription, ledger catch-up) and the relay task.

        Raises `RuntimeError` when started before (a runtime runs once).
        """
        if self._started:
            raise RuntimeError("live events were already started in this process")
        self._started = True
        await self.hub.start()
        self._relay_task = asyncio.create_task(self.relay.run(), name="live-relay")
        if self.reads is not None:
            self._reads_task = asyncio.create_task(self.reads.run(), name="live-reads")
        self.relay.wake()
        self._running = True
        log.info("live.started", backend=self.pubsub.kind, channel=self.hub.channel)

    async def stop(self) -> None:
        """Stop publishing, cancel the relay, stop the hub (closing every subscriber and
        the backend connection). Idempotent."""
        if not self._running:
            return
        self._running = False
        for task in (self._reads_task, self._relay_task):
            if task is not None:
                await stop_task(task)  # re-cancels: asyncpg may swallow the first one
        self._relay_task = self._reads_task = None
        await self.hub.stop()
        log.info("live.stopped")

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[Hub]:
        """Run for the duration of the block (the app's lifespan); yields the hub."""
        await self.start()
        try:
            yield self.hub
        finally:
            await self.stop()

    # ------------------------------------------------------------ EventSink

    async def publish(self, movements: Sequence[AppliedMovement]) -> None:
        """Movements were committed: the stock projection takes them at once (so this
        process reads its own writes), and, while running, the relay positions and
        publishes them (now rather than at its next poll)."""
        if self.reads is not None:
            self.reads.apply_movements(movements)
        if movements and self._running:
            self.relay.wake()

    async def publish_order_changes(self, order_ids: Sequence[uuid.UUID]) -> None:
        """Orders' status changed (committed): while running, wake their watchers in
        every process. A backend failure is logged only: watchers also poll."""
        if not order_ids or not self._running:
            return
        try:
            await self.hub.publish_orders(order_ids)
        except PubSubError as exc:
            log.warning("live.order_publish_failed", error=repr(exc))
