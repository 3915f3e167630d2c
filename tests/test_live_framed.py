"""The framed fan-out (docs/adr/0022-framed-fan-out.md): a shared group's message is framed
once and the same bytes go to each member socket; a socket with per-message deflate gets a
frame of its own; a group wider than a slice of the loop gets every event to every member
once and in order while members leave; changes committed in the process reach its
subscribers once, in order, though its hub gets them from its relay and again from the
broadcast; a slow member is closed alone, under the edge's websocket protocol and under
uvicorn's own."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.websocket.fanout import SLICE
from tests.support.catalog import Catalog
from tests.support.live import (
    STOCK_CHANGED,
    WAIT,
    GraphQLWS,
    ServerFactory,
    eventually,
    position_of,
    reserve_on,
    wait_hub_at,
    wait_positioned,
)
from tests.test_edge_websocket import change_stock
from tests.test_live_shared import gauge, raw_next, wait_stock_subscribers
from tests.test_live_slow import (
    FAT,
    LONG_SKU,
    burst,
    connect_stalled,
    read_until_closed,
    start_with_long_sku,
)

#: Plain uvicorn (a ``--ws-*`` option) with the edge's websocket protocol, or uvicorn's own.
PROTOCOLS = [pytest.param((), id="edge"), pytest.param(("--ws", "websockets-sansio"), id="uvicorn")]


async def test_sockets_with_and_without_deflate_get_the_same_messages(
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    engine: AsyncEngine,
) -> None:
    """One group, half its sockets with per-message deflate: every member gets every event,
    the same text, in order."""
    server = await servers.start(WEBSOCKET_COMPRESSION="true", LIVE_POLL_SECONDS="0.2")
    await wait_hub_at(server, await wait_positioned(engine))
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                GraphQLWS.connect(server.ws_url, compression="deflate" if i % 2 else None)
            )
            for i in range(6)
        ]
        assert [bool(c.ws.protocol.extensions) for c in clients] == [False, True] * 3
        for client in clients:
            await client.subscribe(STOCK_CHANGED, {"skus": ["MUG"]}, "1")
        await wait_stock_subscribers(server, 6)
        assert await gauge(server, "shared_subscription_groups") == 1
        for _ in range(3):
            await change_stock(sessions, catalog.variants["MUG"])
        received = [[(await raw_next(c))["raw"] for _ in range(3)] for c in clients]
        assert all(texts == received[0] for texts in received)
        versions = [
            json.loads(t)["payload"]["data"]["stockChanged"]["version"] for t in received[0]
        ]
        assert versions == list(range(versions[0], versions[0] + 3))


async def test_a_group_wider_than_a_slice_gets_every_event_once_in_order(
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    engine: AsyncEngine,
) -> None:
    """SLICE + 50 members, 20 events in one transaction (written out slice by slice, the
    loop running between slices); 50 members leave as the events go out. Each member that
    stays gets all 20, once, in position order; the group is left with them alone."""
    server = await servers.start(LIVE_POLL_SECONDS="0.2")
    await wait_hub_at(server, await wait_positioned(engine))
    count, leaving, events = SLICE + 50, 50, 20
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(GraphQLWS.connect(server.ws_url, compression=None))
            for _ in range(count)
        ]
        for client in clients:
            await client.subscribe(STOCK_CHANGED, {"skus": ["MUG"]}, "1")
        await wait_stock_subscribers(server, count)
        await burst(sessions, catalog.variants["MUG"], events)
        await asyncio.gather(*(c.complete("1") for c in clients[:leaving]))
        stayed = await asyncio.gather(*(c.events("1", events) for c in clients[leaving:]))
        first = position_of(stayed[0][0])
        for got in stayed:
            assert [position_of(e) for e in got] == list(range(first, first + events))
        await wait_stock_subscribers(server, count - leaving)
        assert await gauge(server, "shared_subscription_members") == count - leaving
        for client in clients[leaving:]:  # nothing more: no duplicate came after the 20th
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.ws.recv(), 0.2)


async def test_changes_committed_here_reach_its_subscribers_once_in_order(
    servers: ServerFactory, catalog: Catalog, engine: AsyncEngine
) -> None:
    """30 reserveStock requests at once on one server: its relay positions them and hands
    them to its own hub, which gets them again from the broadcast (the echo). A group of
    three and a subscriber with other variables each get every position once, in order:
    the positions the ledger gave those movements."""
    server = await servers.start(LIVE_POLL_SECONDS="0.2")
    start = await wait_positioned(engine)
    await wait_hub_at(server, start)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(GraphQLWS.connect(server.ws_url)) for _ in range(4)
        ]
        for client in clients[:3]:
            await client.subscribe(STOCK_CHANGED, {"skus": ["MUG"]}, "1")
        await clients[3].subscribe(STOCK_CHANGED, {"skus": ["MUG", "SHIRT-M"]}, "1")
        await wait_stock_subscribers(server, 4)
        payloads = await asyncio.gather(*(reserve_on(server, ("MUG", 1)) for _ in range(30)))
        assert all(p["userErrors"] == [] for p in payloads)
        got = await asyncio.gather(*(c.events("1", 30) for c in clients))
        async with engine.connect() as conn:
            ledger = (
                await conn.execute(
                    text("SELECT position FROM stock_movements WHERE position > :p ORDER BY 1"),
                    {"p": start},
                )
            ).scalars()
            positions = list(ledger)
        assert len(positions) == 30
        for events in got:
            assert [position_of(e) for e in events] == positions
        for client in clients:  # nothing more: the echo was not sent again
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.ws.recv(), 0.3)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_slow_member_is_closed_alone(
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    protocol: tuple[str, ...],
) -> None:
    """A member that never reads, in the same group as a healthy one: it is closed with
    4008 while the healthy member gets every event, and the group goes on; under the edge's
    protocol (framed writes until the socket pauses) and under uvicorn's own (ASGI sends)."""
    catalog, server = await start_with_long_sku(
        servers,
        sessions,
        *protocol,
        SUBSCRIBER_BUFFER_SIZE="64",
    )
    # The catalog's movements must have reached the hub before anyone subscribes: one the
    # hub dispatches after the group registered is (rightly) delivered, one event more.
    await wait_hub_at(server, await wait_positioned(engine))
    received: list[dict[str, Any]] = []
    async with GraphQLWS.connect(server.ws_url) as healthy:
        await healthy.subscribe(FAT, op_id="fat")

        async def read_forever() -> None:
            while True:
                received.append((await healthy.data("fat"))["stockChanged"])

        reader = asyncio.create_task(read_forever())
        try:
            async with await connect_stalled(server) as stalled:
                await stalled.send(
                    json.dumps({"id": "fat", "type": "subscribe", "payload": {"query": FAT}})
                )
                await wait_stock_subscribers(server, 2)
                assert await gauge(server, "shared_subscription_groups") == 1
                written = 0
                for _ in range(40):  # bounded: bursts until the stalled member is dropped
                    await burst(sessions, catalog.variants[LONG_SKU], 100)
                    written += 100

                    async def caught_up(target: int = written) -> bool:
                        return len(received) >= target

                    await eventually(caught_up, what="the healthy member to keep up")
                    if await gauge(server, "slow_subscribers_dropped_total") >= 1:
                        break
                assert await gauge(server, "slow_subscribers_dropped_total") == 1
                assert await gauge(server, "subscribers", 'kind="stock"') == 1
                assert await gauge(server, "subscriber_queued_events") == 0
                positions = [position_of(e) for e in received]
                assert positions == list(range(positions[0], positions[0] + written))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(read_until_closed(stalled), WAIT)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4008
        finally:
            reader.cancel()
