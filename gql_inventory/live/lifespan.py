"""Wiring of live events into the app's lifespan: the hub and the relay run for as long as
the app serves, and `services.events` is meanwhile the `BroadcastSink` that announces
commits through them (`DiscardingSink` otherwise, `gql_inventory.live.sink`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

from gql_inventory.inventory.uow import AppliedMovement
from gql_inventory.live.hub import Hub, HubSettings
from gql_inventory.live.pubsub import PubSub, PubSubError, backend_url
from gql_inventory.live.relay import Relay
from gql_inventory.live.wire import channel_for
from gql_inventory.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gql_inventory.live.sink import EventSink
    from gql_inventory.settings import Settings


class Services(Protocol):
    """What live events use of `gql_inventory.services.Services`, named by shape so the
    live package never imports `services` (which names `Hub`): no import circle."""

    settings: Settings
    database_url: str
    engine: AsyncEngine
    events: EventSink
    live: Hub | None


log = get_logger(__name__)


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


def hub_settings(services: Services) -> HubSettings:
    """The hub's tuning from the service settings."""
    s = services.settings
    return HubSettings(
        buffer_size=s.subscriber_buffer_size,
        poll_seconds=s.live_poll_seconds,
        heartbeat_seconds=s.broadcast_heartbeat_seconds,
        order_poll_seconds=max(s.live_poll_seconds, 1.0),
    )


@contextlib.asynccontextmanager
async def live_events(services: Services) -> AsyncIterator[Hub]:
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
    services: Services,
) -> contextlib.AbstractAsyncContextManager[Hub | None]:
    """`live_events(services)` unless the `LIVE_EVENTS` setting turns them off."""
    if services.settings.live_events:
        return live_events(services)
    return contextlib.nullcontext()
