"""Subscriptions: stockChanged, lowStockAlerts (admin), orderStatusChanged, ordersChanged
(admin).

Each resolver checks its arguments first, so a bad cursor, an unknown SKU or a
missing admin token is answered with a GraphQL `error` message for the
operation, then returns the event stream. Streams read from the process's hub
(`gql_inventory.live.hub.Hub`); a stream whose buffer overflows gets its websocket
closed with code 4008 and a reason that tells the client to resume. A stream run by a
shared group (`gql_inventory.websocket.fanout`: identical subscriptions executed once)
closes all of the group's sockets instead.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator

import strawberry
from starlette.websockets import WebSocket
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.errors import OrderNotFound
from gql_inventory.kit import metrics
from gql_inventory.live.buffers import SubscriberClosed
from gql_inventory.live.hub import Hub
from gql_inventory.live.ledger import max_position
from gql_inventory.live.replay import ReplayLease, ReplayRefused
from gql_inventory.live.wire import CURSOR_KIND
from gql_inventory.orders import orders
from gql_inventory.readmodel.loaders import Loaders
from gql_inventory.resolvers.cursors import check_stock_cursor, encode_cursor
from gql_inventory.schema.errors import BadRequest, Forbidden, PublicError, ReplayBusy
from gql_inventory.schema.events import LowStockAlertType, StockChangeEventType
from gql_inventory.schema.orders import OrderType
from gql_inventory.stock.products import variant_ids_of
from gql_inventory.websocket.limits import SLOW_CLOSE_CODE
from gql_inventory.websocket.link import Alone, StreamLink

__all__ = ["SLOW_CLOSE_CODE"]

#: Most SKUs one `stockChanged` may name.
MAX_SKUS = 1000


class LiveUnavailable(PublicError):
    """Live events are not running in this process (or the database is unreachable)."""

    def __init__(self) -> None:
        super().__init__("live events are unavailable; retry shortly", "UNAVAILABLE")


class SubscriptionClosed(PublicError):
    """The server ended the subscription (e.g. shutting down); resume with the cursor."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "SUBSCRIPTION_CLOSED")


async def _hub(info: Info[Context, None]) -> Hub:
    if not isinstance(info.context.request, WebSocket):
        # Only graphql-transport-ws: HTTP streams would escape the connection limits.
        raise BadRequest("subscriptions are served over websockets (graphql-transport-ws) only")
    live = info.context.services.live
    hub = live.running_hub if live is not None else None
    if hub is None or not await hub.wait_ready():
        raise LiveUnavailable()
    return hub


def _link(info: Info[Context, None], kind: str) -> StreamLink:
    """The stream's link to what writes its results: its run, or its own operation."""
    run = info.context.fanout
    return run if run is not None else Alone(info.context.request, kind)


async def _after_close(link: StreamLink, closed: SubscriberClosed) -> None:
    """A dropped subscriber: when its socket(s) are being closed, wait to be cancelled
    (sending anything more would race the close); otherwise report why."""
    if link.closing:
        await asyncio.Event().wait()
    raise SubscriptionClosed(closed.reason)


def _fresh_loaders(info: Info[Context, None]) -> None:
    """A websocket's context lives as long as the connection: give each event fresh
    DataLoaders so nested fields show current figures."""
    info.context.loaders = Loaders.of(info.context.services)


# ---------------------------------------------------------------- stockChanged


async def stock_cursor(info: Info[Context, None]) -> str:
    """The cursor of the newest positioned stock event (position 0 when none)."""
    async with info.context.engine.connect() as conn:
        return encode_cursor(CURSOR_KIND, await max_position(conn))


async def stock_changed(
    info: Info[Context, None],
    skus: list[str] | None = None,
    after: str | None = None,
) -> AsyncIterator[StockChangeEventType]:
    """Committed stock changes (of `skus`, or all), resumable after a cursor."""
    hub = await _hub(info)
    variant_ids: frozenset[int] | None = None
    async with info.context.engine.connect() as conn:
        if skus is not None:
            wanted = set(skus)
            if not wanted or len(wanted) > MAX_SKUS:
                raise BadRequest(f"skus: give between 1 and {MAX_SKUS} SKUs, or null for all")
            found = await variant_ids_of(conn, wanted)
            unknown = sorted(wanted - found.keys())
            if unknown:
                raise BadRequest(f"unknown SKUs: {', '.join(unknown[:20])}")
            variant_ids = frozenset(found.values())
        position = None
        if after is not None:
            position = await check_stock_cursor(
                conn, after, hub.replays, admin=info.context.is_admin
            )
    lease = None
    if position is not None:
        try:
            lease = await hub.replays.acquire(info.context.replay_slots)
        except ReplayRefused as exc:
            raise ReplayBusy(retry_after=max(1, int(exc.limit))) from exc
    events = _stock_events(info, hub, variant_ids, position, lease)
    if lease is not None:
        weakref.finalize(events, lease.release)  # a stream never started gives it back
    return events


async def _stock_events(
    info: Info[Context, None],
    hub: Hub,
    variant_ids: frozenset[int] | None,
    after: int | None,
    lease: ReplayLease | None,
) -> AsyncGenerator[StockChangeEventType, None]:
    # Register first, so every event dispatched from now on is buffered; then replay
    # the ledger after the cursor (holding a replay slot); then the buffer, skipping what
    # the replay sent.
    link = _link(info, "stock")
    sub = hub.subscribe_stock(
        variant_ids, link.overflowed, replaying=after is not None, counted=link.counted_by_hub
    )
    link.attached()
    try:
        last = sub.start_position if after is None else after
        if after is not None:
            while True:
                async for event in hub.replay(last, variant_ids):
                    link.sending(event.position)
                    yield StockChangeEventType.from_event(event)
                    link.sent()
                    last = event.position
                if sub.buffer.go_live():
                    break  # else the buffer overflowed while replaying: read on from the ledger
        if lease is not None:
            lease.release()
        while True:
            if not len(sub.buffer) and link.hand_over(last):
                return  # caught up: its group sends what comes after `last`
            try:
                event = await sub.buffer.get()
            except SubscriberClosed as closed:
                await _after_close(link, closed)
                return
            if event.position <= last:
                continue
            link.sending(event.position)
            yield StockChangeEventType.from_event(event)
            link.sent()
            last = event.position
    finally:
        if lease is not None:
            lease.release()
        hub.unsubscribe_stock(sub)
        link.detached()


# ---------------------------------------------------------------- lowStockAlerts


async def low_stock_alerts(info: Info[Context, None]) -> AsyncIterator[LowStockAlertType]:
    """Admin (the `IsAdmin` permission on the field): threshold crossings of variants'
    available units, from now on."""
    hub = await _hub(info)
    return _alert_events(info, hub)


async def _alert_events(
    info: Info[Context, None], hub: Hub
) -> AsyncGenerator[LowStockAlertType, None]:
    link = _link(info, "alerts")
    sub = hub.subscribe_alerts(link.overflowed)
    try:
        while True:
            try:
                alert = await sub.buffer.get()
            except SubscriberClosed as closed:
                await _after_close(link, closed)
                return
            _fresh_loaders(info)
            yield LowStockAlertType.from_event(alert)
            link.sent()
    finally:
        hub.unsubscribe_alerts(sub)


# ---------------------------------------------------------------- orderStatusChanged


async def order_status_changed(
    info: Info[Context, None],
    order_id: strawberry.ID,
    reservation_id: strawberry.ID | None = None,
) -> AsyncIterator[OrderType]:
    """The order now, then on every status change (admin, or the buyer with the
    order's reservation id)."""
    hub = await _hub(info)
    try:
        oid = orders.parse_order_id(order_id)
    except OrderNotFound as exc:
        raise PublicError("no such order", "NOT_FOUND") from exc
    row = await info.context.loaders.orders.order_by_id.load(oid)
    if not info.context.is_admin:
        held = _uuid_or_none(reservation_id)
        if row is None or held is None or row["reservation_id"] != held:
            raise Forbidden("admin token or the order's reservationId required")
    if row is None:
        raise PublicError("no such order", "NOT_FOUND")
    return _order_events(info, hub, oid)


async def _order_events(
    info: Info[Context, None], hub: Hub, order_id: uuid.UUID
) -> AsyncGenerator[OrderType, None]:
    watch = hub.watch_order(order_id)  # before reading: a change after the read wakes us
    sent = metrics.EVENTS_SENT.labels("orders")
    try:
        while True:
            _fresh_loaders(info)
            row = await info.context.loaders.orders.order_by_id.load(order_id)
            if row is None:
                return
            status = str(getattr(row["status"], "value", row["status"]))
            if status != watch.status:
                watch.status = status
                yield OrderType.from_row(row)
                sent.inc()
            await watch.changed.wait()
            watch.changed.clear()
    finally:
        hub.unwatch_order(watch)


# ---------------------------------------------------------------- ordersChanged


async def orders_changed(info: Info[Context, None]) -> AsyncIterator[OrderType]:
    """Admin (the `IsAdmin` permission on the field): every order whose status changes
    from now on (a new order from checkout included), as it is when delivered."""
    hub = await _hub(info)
    return _all_order_events(info, hub)


async def _all_order_events(info: Info[Context, None], hub: Hub) -> AsyncGenerator[OrderType, None]:
    link = _link(info, "orders_changed")
    feed = hub.subscribe_orders(link.overflowed)
    try:
        while True:
            try:
                order_id = await feed.get()
            except SubscriberClosed as closed:
                await _after_close(link, closed)
                return
            _fresh_loaders(info)
            row = await info.context.loaders.orders.order_by_id.load(order_id)
            if row is None:  # pragma: no cover - orders are never deleted
                continue
            yield OrderType.from_row(row)
            link.sent()
    finally:
        hub.unsubscribe_orders(feed)


def _uuid_or_none(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None
