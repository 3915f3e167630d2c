"""ordersChanged (admin): every order's status change, against a real server process."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.devtools import stripe_events as events
from gql_inventory.live.buffers import SubscriberClosed
from gql_inventory.live.orders import OrderWatches
from tests.support.catalog import Catalog
from tests.support.live import (
    ADMIN_TOKEN,
    WAIT,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    eventually,
    reserve_on,
    wait_positioned,
)

ORDERS_CHANGED = "subscription { ordersChanged { id status lines { quantity variant { sku } } } }"
CHECKOUT = """mutation($rid: ID!) { checkout(input: {reservationId: $rid}) {
  order { id status } userErrors { code } } }"""
WEBHOOK_SECRET = "whsec_test_orders_changed"
CANCEL = """mutation($id: ID!) { cancelOrder(input: {orderId: $id}) {
  order { status } userErrors { code } } }"""


@pytest.fixture
async def server(servers: ServerFactory, catalog: Catalog, engine: AsyncEngine) -> LiveServer:
    started = await servers.start()
    await wait_positioned(engine)
    return started


async def _checkout(server: LiveServer, sku: str, quantity: int) -> str:
    rid = (await reserve_on(server, (sku, quantity)))["reservation"]["id"]
    body = await server.graphql(CHECKOUT, {"rid": rid})
    assert body["data"]["checkout"]["userErrors"] == [], body
    order_id: str = body["data"]["checkout"]["order"]["id"]
    return order_id


async def test_admin_sees_every_orders_status_changes(server: LiveServer) -> None:
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with GraphQLWS.connect(server.ws_url, auth) as admin:
        op = await admin.subscribe(ORDERS_CHANGED)

        async def registered() -> bool:
            return await server.metric("gql_inventory_subscribers", 'kind="orders_changed"') == 1

        await eventually(registered, what="the ordersChanged subscription")
        first = await _checkout(server, "SHIRT-S", 2)
        (created,) = await admin.events(op, 1, field="ordersChanged")
        assert (created["id"], created["status"]) == (first, "PENDING_PAYMENT")
        assert created["lines"] == [{"quantity": 2, "variant": {"sku": "SHIRT-S"}}]

        second = await _checkout(server, "MUG", 1)  # another buyer's order: seen too
        (other,) = await admin.events(op, 1, field="ordersChanged")
        assert (other["id"], other["status"]) == (second, "PENDING_PAYMENT")

        cancelled = await server.graphql(CANCEL, {"id": first}, admin=True)
        assert cancelled["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"
        (changed,) = await admin.events(op, 1, field="ordersChanged")
        assert (changed["id"], changed["status"]) == (first, "CANCELLED")

    async def gone() -> bool:
        return await server.metric("gql_inventory_subscribers", 'kind="orders_changed"') == 0

    await eventually(gone, what="the ordersChanged feed to be forgotten")


async def test_orders_changed_needs_an_admin_token(server: LiveServer) -> None:
    async with GraphQLWS.connect(server.ws_url) as anonymous:
        op = await anonymous.subscribe(ORDERS_CHANGED)
        error = await anonymous.error(op)
        assert error["extensions"]["code"] == "FORBIDDEN"
    async with GraphQLWS.connect(server.ws_url, {"authorization": "Bearer wrong"}) as wrong:
        op = await wrong.subscribe(ORDERS_CHANGED)
        assert (await wrong.error(op))["extensions"]["code"] == "FORBIDDEN"


async def test_a_full_orders_feed_closes_and_says_so(engine: AsyncEngine) -> None:
    """The feed is bounded: past `size` unread ids it closes (the websocket gets 4008)."""
    watches = OrderWatches(engine, poll_seconds=60)
    reasons: list[str] = []
    feed = watches.feed(2, reasons.append)
    other = watches.feed(10, reasons.append)
    ids = [uuid.uuid4() for _ in range(3)]
    watches.notify(ids)
    assert len(reasons) == 1
    assert "too slow" in reasons[0]
    assert feed.closed_reason == reasons[0]
    with pytest.raises(SubscriberClosed):
        await feed.get()
    assert [await other.get() for _ in ids] == ids  # the others are not affected
    watches.unfeed(feed)
    watches.unfeed(feed)  # idempotent
    watches.unfeed(other)


async def test_admin_sees_the_payment_webhook_mark_an_order_paid(
    servers: ServerFactory,
    catalog: Catalog,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    server = await servers.start(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    await wait_positioned(engine)
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with GraphQLWS.connect(server.ws_url, auth) as admin:
        op = await admin.subscribe(ORDERS_CHANGED)

        async def registered() -> bool:
            return await server.metric("gql_inventory_subscribers", 'kind="orders_changed"') == 1

        await eventually(registered, what="the ordersChanged subscription")
        order_id = await _checkout(server, "MUG", 2)
        (created,) = await admin.events(op, 1, field="ordersChanged")
        assert (created["id"], created["status"]) == (order_id, "PENDING_PAYMENT")
        async with sessions.begin() as session:
            facts = await events.load_order_facts(session, uuid.UUID(order_id))
        body, headers = events.signed(
            events.event_for_order("payment_intent.succeeded", facts), WEBHOOK_SECRET
        )
        async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT) as client:
            answer = await client.post("/webhooks/stripe", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        (paid,) = await admin.events(op, 1, field="ordersChanged")
        assert (paid["id"], paid["status"]) == (order_id, "PAID")
