"""Identical subscriptions (document, variables, role) share one execution per event: every
member gets the same bytes but for its operation id; other variables or roles do not share;
members come and go without stopping the others (a slow member: tests/test_live_framed.py);
resume cursors still run their own catch-up; the groups are gone once everyone has left."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.websockets import WebSocketState

from gql_inventory.websocket.fanout import Run, SharedSubscriptions
from gql_inventory.websocket.members import Member
from gql_inventory.websocket.sharing import group_key
from tests.support.catalog import Catalog
from tests.support.live import (
    ADMIN_TOKEN,
    STOCK_CHANGED,
    WAIT,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    cursor_at,
    eventually,
    position_of,
    wait_hub_at,
    wait_positioned,
)
from tests.test_edge_websocket import change_stock

MEMBERS = 12


@pytest.fixture
async def server(servers: ServerFactory, catalog: Catalog, engine: AsyncEngine) -> LiveServer:
    started = await servers.start(LIVE_POLL_SECONDS="0.2")
    await wait_hub_at(started, await wait_positioned(engine))
    return started


async def gauge(server: LiveServer, name: str, labels: str = "") -> float:
    return await server.metric(f"gql_inventory_{name}", labels)


async def wait_stock_subscribers(server: LiveServer, count: int) -> None:
    async def registered() -> bool:
        return await gauge(server, "subscribers", 'kind="stock"') == count

    await eventually(registered, what=f"{count} stock subscribers")


async def raw_next(client: GraphQLWS) -> dict[str, Any]:
    """The next message on the socket, parsed, with its raw text under "raw"."""
    raw = await asyncio.wait_for(client.ws.recv(), WAIT)
    message: dict[str, Any] = json.loads(raw)
    message["raw"] = raw
    return message


def without_id(message: dict[str, Any]) -> str:
    """The raw text with the operation id's JSON taken out (the only part that differs)."""
    raw: str = message["raw"]
    id_json = json.dumps(message["id"])
    assert raw.count(id_json) >= 1
    return raw.replace('"id":' + id_json, '"id":', 1)


async def test_identical_subscriptions_execute_once_and_get_the_same_bytes(
    server: LiveServer, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    """12 storefront clients with one document and variables (operation ids of different
    lengths and characters) form one group: one execution per event, byte-identical
    messages but for the id. Other SKUs make a second group; an admin a third."""
    async with contextlib.AsyncExitStack() as stack:
        same = [
            await stack.enter_async_context(GraphQLWS.connect(server.ws_url))
            for _ in range(MEMBERS)
        ]
        ids = [f"op-{i}" + ('"é' * (i % 3)) for i in range(MEMBERS)]
        for client, op_id in zip(same, ids, strict=True):
            await client.subscribe(STOCK_CHANGED, {"skus": ["MUG"]}, op_id)
        other = await stack.enter_async_context(GraphQLWS.connect(server.ws_url))
        await other.subscribe(STOCK_CHANGED, {"skus": ["MUG", "SHIRT-M"]}, "other")
        admin = await stack.enter_async_context(
            GraphQLWS.connect(server.ws_url, {"authorization": f"Bearer {ADMIN_TOKEN}"})
        )
        await admin.subscribe(STOCK_CHANGED, {"skus": ["MUG"]}, "admin")
        await wait_stock_subscribers(server, MEMBERS + 2)
        assert await gauge(server, "shared_subscription_groups") == 3
        assert await gauge(server, "shared_subscription_members") == MEMBERS + 2
        before = await gauge(server, "shared_subscription_executions_total")

        await change_stock(sessions, catalog.variants["MUG"])
        messages = [await raw_next(client) for client in same]
        assert [m["id"] for m in messages] == ids
        assert {m["type"] for m in messages} == {"next"}
        assert len({without_id(m) for m in messages}) == 1
        event = messages[0]["payload"]["data"]["stockChanged"]
        assert event["sku"] == "MUG"
        assert event["location"]["name"] == "Main"
        for client, op_id in ((other, "other"), (admin, "admin")):
            assert (await client.data(op_id))["stockChanged"] == event

        # One execution per group, not per member.
        assert await gauge(server, "shared_subscription_executions_total") == before + 3
        sent = await gauge(server, "subscription_events_sent_total", 'kind="stock"')
        assert sent == MEMBERS + 2

    async def all_gone() -> bool:
        return (
            await gauge(server, "shared_subscription_groups"),
            await gauge(server, "shared_subscription_members"),
            await gauge(server, "subscribers", 'kind="stock"'),
            await gauge(server, "websocket_connections"),
        ) == (0, 0, 0, 0)

    await eventually(all_gone, what="groups, members and connections back to zero")


async def test_roles_do_not_share_and_admin_fields_stay_with_admins(server: LiveServer) -> None:
    """The same admin-only document from an admin and from a storefront client: the
    storefront one is refused (FORBIDDEN) even while the admin's runs."""
    alerts = "subscription { lowStockAlerts { variant { sku } state } }"
    async with (
        GraphQLWS.connect(server.ws_url, {"authorization": ADMIN_TOKEN}) as admin,
        GraphQLWS.connect(server.ws_url) as storefront,
    ):
        await admin.subscribe(alerts, op_id="a")

        async def admin_registered() -> bool:
            return await gauge(server, "subscribers", 'kind="alerts"') == 1

        await eventually(admin_registered, what="the admin's alert subscription")
        await storefront.subscribe(alerts, op_id="s")
        error = await storefront.error("s")
        assert error["extensions"]["code"] == "FORBIDDEN"


async def test_members_leave_without_stopping_the_others(
    server: LiveServer, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    """One member completes its operation, another closes its socket: the rest still get
    each change; a new identical subscription joins the same stream; a resuming client
    (cursor) gets what it missed from the ledger alone, then joins the group: no gap, no
    duplicate."""
    variables = {"skus": ["SHIRT-M"]}
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(GraphQLWS.connect(server.ws_url)) for _ in range(4)
        ]
        for client in clients:
            await client.subscribe(STOCK_CHANGED, variables, "s")
        await wait_stock_subscribers(server, 4)
        await change_stock(sessions, catalog.variants["SHIRT-M"])
        first = [(await c.data("s"))["stockChanged"] for c in clients]
        assert len({position_of(e) for e in first}) == 1

        await clients[0].complete("s")
        await clients[1].ws.close()
        await wait_stock_subscribers(server, 2)
        late = await stack.enter_async_context(GraphQLWS.connect(server.ws_url))
        await late.subscribe(STOCK_CHANGED, variables, "s")
        resuming = await stack.enter_async_context(GraphQLWS.connect(server.ws_url))
        missed = cursor_at(position_of(first[0]) - 1)
        await resuming.subscribe(STOCK_CHANGED, {**variables, "after": missed}, "r")
        assert position_of((await resuming.data("r"))["stockChanged"]) == position_of(first[0])

        async def handed_over() -> bool:  # caught up: it joins the group
            return await gauge(server, "shared_subscription_members") == 4

        await eventually(handed_over, what="the resumed subscription to join its group")
        await wait_stock_subscribers(server, 4)
        assert await gauge(server, "shared_subscription_groups") == 1
        before = await gauge(server, "shared_subscription_executions_total")

        await change_stock(sessions, catalog.variants["SHIRT-M"])
        second = [
            (await c.data(i))["stockChanged"]
            for c, i in ((clients[2], "s"), (clients[3], "s"), (late, "s"), (resuming, "r"))
        ]
        assert {position_of(e) for e in second} == {position_of(first[0]) + 1}
        assert await gauge(server, "shared_subscription_executions_total") == before + 1


async def test_resuming_while_changes_flow_hands_over_without_gap_or_duplicate(
    server: LiveServer,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    engine: AsyncEngine,
) -> None:
    """A live group, and ten clients resuming from cursors 0-9 events back while 30
    changes are committed one after the other: each client receives every position after
    its cursor exactly once, in order, and ends up in the group."""
    variables = {"skus": ["MUG"]}
    changes = 30
    async with contextlib.AsyncExitStack() as stack:
        anchor = await stack.enter_async_context(GraphQLWS.connect(server.ws_url))
        await anchor.subscribe(STOCK_CHANGED, variables, "a")
        await wait_stock_subscribers(server, 1)
        for _ in range(10):
            await change_stock(sessions, catalog.variants["MUG"])
        seen = [position_of(e) for e in await anchor.events("a", 10)]

        async def writer() -> None:
            for _ in range(changes):
                await change_stock(sessions, catalog.variants["MUG"])

        writing = asyncio.create_task(writer())
        resuming = []
        for back in range(10):
            client = await stack.enter_async_context(GraphQLWS.connect(server.ws_url))
            start = seen[-1 - back]
            await client.subscribe(STOCK_CHANGED, {**variables, "after": cursor_at(start)}, "r")
            resuming.append((client, start))
        await writing
        top = await wait_positioned(engine)
        for client, start in resuming:
            events = await client.events("r", top - start)
            assert [position_of(e) for e in events] == list(range(start + 1, top + 1))
        assert [position_of(e) for e in await anchor.events("a", changes)] == list(
            range(seen[-1] + 1, top + 1)
        )

        async def all_joined() -> bool:
            return await gauge(server, "shared_subscription_members") == 11

        await eventually(all_joined, what="every resumed client in the group")
        await change_stock(sessions, catalog.variants["MUG"])  # no duplicate queued before it
        for client, op_id in [(anchor, "a")] + [(c, "r") for c, _ in resuming]:
            assert position_of((await client.data(op_id))["stockChanged"]) == top + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "variables", "shared"),
    [
        (STOCK_CHANGED, {"skus": ["A"]}, True),
        (STOCK_CHANGED, {"skus": ["A"], "after": None}, True),
        (STOCK_CHANGED, {"after": "c3RvY2s6MQ=="}, False),  # catch-up runs alone
        ('subscription { stockChanged(after: "c3RvY2s6MQ==") { sku } }', {}, False),
        ("subscription { stockChanged(after: null) { sku } }", {}, True),
        ('subscription($a: String = "x") { stockChanged(after: $a) { sku } }', {}, False),
        ("subscription { stockChanged @include(if: true) { sku } }", {}, False),
        ("subscription { lowStockAlerts { state } }", {}, False),
        ("subscription { orderStatusChanged(orderId: 1) { id } }", {}, False),
        ("{ stockCursor }", {}, False),
        ("subscription { stockChanged { sku", {}, False),  # Strawberry answers 4400
    ],
)
def test_which_operations_share(query: str, variables: dict[str, Any], shared: bool) -> None:
    assert (group_key(query, None, variables, False) is not None) is shared


def test_a_resuming_subscription_gets_the_key_of_the_group_it_may_join() -> None:
    live = group_key(STOCK_CHANGED, None, {"skus": ["A"]}, False)
    resuming = group_key(
        STOCK_CHANGED, None, {"skus": ["A"], "after": "c3RvY2s6MQ=="}, False, resuming=True
    )
    assert resuming is not None
    assert resuming == live
    assert group_key(STOCK_CHANGED, None, {"skus": ["A"]}, False, resuming=True) is None


def test_the_key_tells_roles_and_variables_apart() -> None:
    storefront = group_key(STOCK_CHANGED, None, {"skus": ["A"], "after": None}, False)
    assert storefront == group_key(STOCK_CHANGED, None, {"after": None, "skus": ["A"]}, False)
    assert storefront != group_key(STOCK_CHANGED, None, {"skus": ["A"]}, True)
    assert storefront != group_key(STOCK_CHANGED, None, {"skus": ["B"]}, False)


class _Socket:
    """Stands in for a Starlette WebSocket: records what a member is sent."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.application_state = WebSocketState.CONNECTED
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)


async def test_members_leave_no_reference_behind() -> None:
    """With the cyclic collector off, a member's socket is freed as soon as it leaves, and
    the group's execution stops when the last member has left."""
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def results() -> AsyncIterator[Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        yield None  # pragma: no cover

    async def stream(run: Run) -> AsyncIterator[Any]:
        return results()

    registry = SharedSubscriptions(4, json.dumps)
    key = group_key(STOCK_CHANGED, None, {"skus": ["A"]}, False)
    assert key is not None
    gc.disable()
    try:
        sockets = [_Socket(), _Socket()]
        alive = [weakref.ref(s) for s in sockets]
        members = [Member(s, f"op{i}", lambda m: None) for i, s in enumerate(sockets)]  # type: ignore[arg-type]
        groups = {registry.join(key[0], key[1], m, stream) for m in members}
        assert len(groups) == 1
        assert len(registry) == 1
        group = groups.pop()
        await asyncio.wait_for(started.wait(), WAIT)
        group.leave(members.pop(0))
        del sockets[0]
        assert alive[0]() is None
        assert not stopped.is_set()
        group.leave(members.pop())
        del sockets[0], group, groups
        await asyncio.wait_for(stopped.wait(), WAIT)
        assert alive[1]() is None
        assert len(registry) == 0
    finally:
        gc.enable()
