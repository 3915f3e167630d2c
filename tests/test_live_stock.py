"""stockChanged, lowStockAlerts and orderStatusChanged against a real server process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.support.catalog import Catalog
from tests.support.live import (
    ADMIN_TOKEN,
    EVENT_FIELDS,
    STOCK_CHANGED,
    WAIT,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    cursor_at,
    eventually,
    position_of,
    reserve_on,
    wait_hub_at,
    wait_positioned,
)

RELEASE = """mutation($id: ID!) { releaseReservation(reservationId: $id) {
  reservation { status } userErrors { code } } }"""
CHECKOUT = """mutation($rid: ID!) { checkout(input: {reservationId: $rid}) {
  order { id status } userErrors { code } } }"""
CANCEL = """mutation($id: ID!) { cancelOrder(input: {orderId: $id}) {
  order { status } userErrors { code } } }"""
ALERTS = """subscription { lowStockAlerts {
  variant { sku available } available threshold state occurredAt } }"""
ORDER_STATUS = """subscription($id: ID!, $rid: ID) {
  orderStatusChanged(orderId: $id, reservationId: $rid) { id status lines { quantity } } }"""


@pytest.fixture
async def server(servers: ServerFactory, catalog: Catalog, engine: AsyncEngine) -> LiveServer:
    started = await servers.start()
    await wait_hub_at(started, await wait_positioned(engine))  # the catalog's events are old
    return started


async def test_reservation_over_http_reaches_a_gql_client(server: LiveServer) -> None:
    """The `gql` client's websockets transport (graphql-transport-ws) gets the change."""
    after = await server.stock_cursor()
    transport = WebsocketsTransport(
        url=server.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
    )
    request = GraphQLRequest(STOCK_CHANGED, variable_values={"skus": ["MUG"], "after": after})
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        events = session.subscribe(request)
        payload = await reserve_on(server, ("MUG", 3))
        assert payload["userErrors"] == []
        try:
            first = await anext_within(events)
        finally:
            await events.aclose()  # unsubscribe (graphql-transport-ws `complete`)
    event = first["stockChanged"]
    assert event["sku"] == "MUG"
    assert event["kind"] == "RESERVATION"
    assert event["location"]["name"] == "Main"
    assert (event["onHandDelta"], event["reservedDelta"]) == (0, 3)
    assert (event["onHand"], event["reserved"], event["available"]) == (50, 3, 47)
    assert event["version"] == 2  # the receipt that stocked it was version 1
    assert position_of(event) == position_of({"cursor": after}) + 1


async def anext_within(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(events), WAIT)


async def test_rolled_back_changes_send_nothing(
    server: LiveServer, catalog: Catalog, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with GraphQLWS.connect(server.ws_url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"after": await server.stock_cursor()})
        # A multi-line reservation refused on its second line: all or nothing.
        refused = await reserve_on(server, ("MUG", 1), ("CAP", 1))
        assert [e["code"] for e in refused["userErrors"]] == ["INSUFFICIENT_STOCK"]
        # A transaction that wrote a movement (it took an id) and then rolled back.
        with pytest.raises(RuntimeError, match="roll back"):
            await write_then_roll_back(sessions, catalog.variants["MUG"])
        # A committed change afterwards is the first and only thing the subscriber sees.
        assert (await reserve_on(server, ("SHIRT-M", 1)))["userErrors"] == []
        (event,) = await client.events(op, 1)
        assert (event["sku"], event["kind"], event["reservedDelta"]) == (
            "SHIRT-M",
            "RESERVATION",
            1,
        )
        assert (await reserve_on(server, ("SHIRT-L", 2)))["userErrors"] == []
        (event,) = await client.events(op, 1)
        assert (event["sku"], event["reservedDelta"]) == ("SHIRT-L", 2)


async def write_then_roll_back(sessions: async_sessionmaker[AsyncSession], variant_id: int) -> None:
    """A transaction that writes a movement (it takes an id), then fails."""
    async with sessions.begin() as session:
        level_id = (
            await session.execute(
                text("SELECT id FROM stock_levels WHERE variant_id = :v"), {"v": variant_id}
            )
        ).scalar_one()
        written = await apply_movement(
            UnitOfWork(session, actor="system"),
            level_id=level_id,
            kind=MovementKind.ADJUSTMENT,
            on_hand_delta=7,
        )
        assert written is not None
        raise RuntimeError("roll back")


async def test_bad_cursors_and_skus_are_refused(server: LiveServer) -> None:
    top = position_of({"cursor": await server.stock_cursor()})
    async with GraphQLWS.connect(server.ws_url) as client:
        malformed = await client.subscribe(STOCK_CHANGED, {"after": "not-a-cursor"})
        error = await client.error(malformed)
        assert error["extensions"]["code"] == "BAD_CURSOR"
        other_kind = await client.subscribe(STOCK_CHANGED, {"after": "cHJvZHVjdDox"})  # product:1
        assert (await client.error(other_kind))["extensions"]["code"] == "BAD_CURSOR"
        ahead = await client.subscribe(STOCK_CHANGED, {"after": cursor_at(top + 100)})
        error = await client.error(ahead)
        assert error["extensions"]["code"] == "BAD_CURSOR"
        assert "beyond" in error["message"]
        unknown = await client.subscribe(STOCK_CHANGED, {"skus": ["MUG", "NOPE-1"]})
        error = await client.error(unknown)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "NOPE-1" in error["message"]
        # The connection is still usable: a valid subscription from the very start.
        ok = await client.subscribe(STOCK_CHANGED, {"after": cursor_at(0), "skus": ["MUG"]})
        (event,) = await client.events(ok, 1)
        assert (event["sku"], event["kind"], event["version"]) == ("MUG", "RECEIPT", 1)


async def test_admin_subscription_needs_the_connection_token(server: LiveServer) -> None:
    async with GraphQLWS.connect(server.ws_url) as anonymous:
        op = await anonymous.subscribe(ALERTS)
        assert (await anonymous.error(op))["extensions"]["code"] == "FORBIDDEN"
    async with GraphQLWS.connect(server.ws_url, {"authorization": "Bearer wrong"}) as wrong:
        op = await wrong.subscribe(ALERTS)
        assert (await wrong.error(op))["extensions"]["code"] == "FORBIDDEN"
    # The gql client reports the refusal as an error of the subscription.
    transport = WebsocketsTransport(
        url=server.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        with pytest.raises(TransportQueryError, match="admin token required"):
            async for _ in session.subscribe(GraphQLRequest(ALERTS)):
                pass


async def test_low_stock_alerts_one_per_crossing(server: LiveServer) -> None:
    """MUG: 50 available, threshold 5."""
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with GraphQLWS.connect(server.ws_url, auth) as admin:
        op = await admin.subscribe(ALERTS)

        async def registered() -> bool:
            return await server.metric("gql_inventory_subscribers", 'kind="alerts"') == 1

        await eventually(registered, what="the alert subscription")
        big = (await reserve_on(server, ("MUG", 40)))["reservation"]["id"]  # 10 left: no alert
        low = (await reserve_on(server, ("MUG", 6)))["reservation"]["id"]  # 4: LOW
        await reserve_on(server, ("MUG", 1))  # 3: still LOW, no alert
        last = (await reserve_on(server, ("MUG", 3)))["reservation"]["id"]  # 0: OUT_OF_STOCK
        await server.graphql(RELEASE, {"id": last})  # 3: LOW again
        await server.graphql(RELEASE, {"id": low})  # 9: BACK_IN_STOCK
        await server.graphql(RELEASE, {"id": big})  # 49: no alert
        await reserve_on(server, ("MUG", 44))  # 5: LOW (at the threshold)
        alerts = await admin.events(op, 5, field="lowStockAlerts")
    assert [(a["state"], a["available"]) for a in alerts] == [
        ("LOW", 4),
        ("OUT_OF_STOCK", 0),
        ("LOW", 3),
        ("BACK_IN_STOCK", 9),
        ("LOW", 5),
    ]
    assert {a["variant"]["sku"] for a in alerts} == {"MUG"}
    assert {a["threshold"] for a in alerts} == {5}


async def test_order_status_changes_reach_the_buyer(server: LiveServer) -> None:
    rid = (await reserve_on(server, ("SHIRT-S", 2)))["reservation"]["id"]
    order = (await server.graphql(CHECKOUT, {"rid": rid}))["data"]["checkout"]["order"]
    assert order["status"] == "PENDING_PAYMENT"
    async with GraphQLWS.connect(server.ws_url) as buyer:
        refused = await buyer.subscribe(ORDER_STATUS, {"id": order["id"]})
        assert (await buyer.error(refused))["extensions"]["code"] == "FORBIDDEN"
        op = await buyer.subscribe(ORDER_STATUS, {"id": order["id"], "rid": rid})
        now = (await buyer.data(op))["orderStatusChanged"]
        assert (now["id"], now["status"], now["lines"]) == (
            order["id"],
            "PENDING_PAYMENT",
            [{"quantity": 2}],
        )
        cancelled = await server.graphql(CANCEL, {"id": order["id"]}, admin=True)
        assert cancelled["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"
        changed = (await buyer.data(op))["orderStatusChanged"]
        assert changed["status"] == "CANCELLED"


async def test_metrics_count_subscribers_and_events(server: LiveServer) -> None:
    async with GraphQLWS.connect(server.ws_url) as client:
        op = await client.subscribe(
            f"subscription($a: String) {{ stockChanged(after: $a) {{ {EVENT_FIELDS} }} }}",
            {"a": cursor_at(0)},
        )
        await client.events(op, 5)  # the catalog's five receipts
        assert await server.metric("gql_inventory_websocket_connections") == 1
        assert await server.metric("gql_inventory_subscribers", 'kind="stock"') == 1
        assert (
            await server.metric("gql_inventory_subscription_events_sent_total", 'kind="stock"') == 5
        )

    async def gone() -> bool:
        return await server.metric("gql_inventory_subscribers", 'kind="stock"') == 0

    await eventually(gone, what="the subscriber to be forgotten")


async def test_connection_and_subscription_limits(
    servers: ServerFactory, catalog: Catalog, engine: AsyncEngine
) -> None:
    server = await servers.start(
        MAX_WEBSOCKET_CONNECTIONS="1", MAX_SUBSCRIPTIONS_PER_CONNECTION="1"
    )
    await wait_positioned(engine)
    async with GraphQLWS.connect(server.ws_url) as first:
        op = await first.subscribe(
            STOCK_CHANGED, {"skus": ["MUG"], "after": await server.stock_cursor()}
        )
        second = await first.subscribe(STOCK_CHANGED, {"skus": ["CAP"]})
        assert (await first.error(second))["message"] == "Subscription limit reached"
        with pytest.raises(websockets.ConnectionClosed) as refused:
            async with GraphQLWS.connect(server.ws_url):
                pass
        assert refused.value.rcvd is not None
        assert refused.value.rcvd.code == 1013
        assert await server.metric("gql_inventory_websockets_refused_total") == 1
        # The first connection is unaffected.
        assert (await reserve_on(server, ("MUG", 1)))["userErrors"] == []
        (event,) = await first.events(op, 1)
        assert (event["sku"], event["reservedDelta"]) == ("MUG", 1)


async def test_an_event_and_a_query_name_a_renamed_location_alike(
    server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """One location source (issue 15): events take locations from the catalog snapshot
    queries read, so once a query shows a rename, the next event shows it too."""
    async with GraphQLWS.connect(server.ws_url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"skus": ["MUG"]})
        assert (await reserve_on(server, ("MUG", 1)))["userErrors"] == []
        (event,) = await client.events(op, 1)
        assert event["location"]["name"] == "Main"
        async with sessions.begin() as session:
            await session.execute(
                text("UPDATE locations SET name = 'Main hall' WHERE name = 'Main'")
            )

        async def query_shows_the_rename() -> bool:
            body = await server.graphql("{ locations { name } }")
            return "Main hall" in [loc["name"] for loc in body["data"]["locations"]]

        await eventually(query_shows_the_rename, what="a query to show the renamed location")
        assert (await reserve_on(server, ("MUG", 1)))["userErrors"] == []
        (event,) = await client.events(op, 1)
        assert event["location"]["name"] == "Main hall"
