"""The websocket edge frees everything on every close path: a protocol error the server
answers by closing (4409 duplicate id, 4400 non-JSON, 4429 second init), a client that
vanishes mid-subscription, and a server shutdown (1001, then a prompt exit)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from gql_inventory.websocket.handler import reap
from tests.support.catalog import Catalog, make_catalog
from tests.support.live import (
    ROOT,
    STOCK_CHANGED,
    WAIT,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    cursor_at,
    eventually,
    wait_positioned,
)
from tests.test_live_slow import FAT, LONG_SKU, burst, connect_stalled, start_with_long_sku

LIMIT = 50
PER_KIND = 100
#: The close code the server answers each bad client with (None: the client vanishes).
KINDS: dict[str, int | None] = {
    "duplicate-id": 4409,
    "non-json": 4400,
    "second-init": 4429,
    "abrupt-disconnect": None,
}


async def change_stock(sessions: async_sessionmaker[AsyncSession], variant_id: int) -> None:
    """One committed stock change (+1 on hand) of the variant's first level."""
    async with sessions.begin() as session:
        level_id = (
            await session.execute(
                text("SELECT min(id) FROM stock_levels WHERE variant_id = :v"), {"v": variant_id}
            )
        ).scalar_one()
        written = await apply_movement(
            UnitOfWork(session, actor="system"),
            level_id=level_id,
            kind=MovementKind.ADJUSTMENT,
            on_hand_delta=1,
        )
        assert written is not None


async def close_code(ws: Any) -> int | None:
    """Read until the server closes; the code it sent (None when it sent no close)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def bad_client(url: str, kind: str, index: int, after: str) -> int | None:
    """Subscribe, then misbehave. Every fourth client (and every abrupt one) first gets an
    event (its subscription is live in the hub); the others misbehave 0-49 ms after
    subscribing, while their subscription is still starting (the leaking case)."""
    settled = index % 4 == 0 or kind == "abrupt-disconnect"
    async with GraphQLWS.connect(url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"after": after} if settled else {}, "op")
        if settled:
            await client.data(op)
        else:
            await asyncio.sleep((index * 7 % 50) / 1000)
        if kind == "duplicate-id":
            await client.subscribe(STOCK_CHANGED, {}, "op")
        elif kind == "non-json":
            await client.ws.send("this is not JSON {")
        elif kind == "second-init":
            await client.ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        else:
            client.ws.transport.abort()  # no close frame: the TCP connection just drops
            with contextlib.suppress(Exception):
                await client.ws.wait_closed()
            return None
        return await close_code(client.ws)


async def gauges(server: LiveServer) -> tuple[float, float, float]:
    return (
        await server.metric("gql_inventory_websocket_connections"),
        await server.metric("gql_inventory_subscribers", 'kind="stock"'),
        await server.metric("gql_inventory_subscriber_queued_events"),
    )


async def assert_new_client_gets_a_change(
    server: LiveServer, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    async with GraphQLWS.connect(server.ws_url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"skus": ["MUG"]})

        async def subscribed() -> bool:
            return await server.metric("gql_inventory_subscribers", 'kind="stock"') == 1

        await eventually(subscribed, what="the new client's subscription")
        await change_stock(sessions, catalog.variants["MUG"])
        event = (await client.data(op))["stockChanged"]
        assert event["sku"] == "MUG"
        assert event["onHandDelta"] == 1


@pytest.mark.slow
async def test_bad_connections_free_their_counters_and_never_lock_clients_out(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """100 connections of each bad kind at once: each gets its close code, the gauges
    return to zero after each kind, and a new client still subscribes and receives a
    stock change."""
    async with sessions.begin() as session:
        catalog = await make_catalog(session)
    server = await servers.start(LIVE_POLL_SECONDS="0.2")
    top = await wait_positioned(engine)
    after = cursor_at(top - 1)  # each subscriber first replays the newest change

    for kind, expected in KINDS.items():
        codes = await asyncio.gather(
            *(bad_client(server.ws_url, kind, i, after) for i in range(PER_KIND))
        )
        assert codes == [expected] * PER_KIND, (kind, sorted(set(map(str, codes))))

        async def freed() -> bool:
            return await gauges(server) == (0, 0, 0)

        await eventually(freed, what=f"gauges back to zero after {kind}")

    assert await server.metric("gql_inventory_websockets_refused_total") == 0
    await assert_new_client_gets_a_change(server, sessions, catalog)
    assert "Traceback" not in server.log()


async def test_sixty_bad_connections_do_not_fill_a_limit_of_fifty(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """The reported lockout: 60 connections closed with 4409 (duplicate subscribe id) then
    a later client, with MAX_WEBSOCKET_CONNECTIONS=50: it is not refused (1013)."""
    async with sessions.begin() as session:
        catalog = await make_catalog(session)
    server = await servers.start(MAX_WEBSOCKET_CONNECTIONS=str(LIMIT))
    after = cursor_at(await wait_positioned(engine) - 1)
    codes: list[int | None] = []
    for start, end in ((0, LIMIT), (LIMIT, 60)):  # a leak in the first batch refuses the next
        codes += await asyncio.gather(
            *(bad_client(server.ws_url, "duplicate-id", i, after) for i in range(start, end))
        )
    assert codes == [4409] * 60

    async def freed() -> bool:
        return await gauges(server) == (0, 0, 0)

    await eventually(freed, what="gauges back to zero")
    await assert_new_client_gets_a_change(server, sessions, catalog)
    assert await server.metric("gql_inventory_websockets_refused_total") == 0


@pytest.mark.slow
async def test_a_slow_subscriber_closed_with_4008_frees_its_connection(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """A client that never reads overflows its buffer and is closed (4008); once it drops,
    its connection, subscription and buffered events are all freed."""
    catalog, server = await start_with_long_sku(
        servers,
        sessions,
        SUBSCRIBER_BUFFER_SIZE="64",
        LIVE_POLL_SECONDS="0.2",
    )
    await wait_positioned(engine)
    stalled = await connect_stalled(server)
    try:
        await stalled.send(
            json.dumps({"id": "fat", "type": "subscribe", "payload": {"query": FAT}})
        )

        async def subscribed() -> bool:
            return await server.metric("gql_inventory_subscribers", 'kind="stock"') == 1

        await eventually(subscribed, what="the stalled client's subscription")
        for _ in range(40):  # bounded: bursts until the stalled client is dropped
            await burst(sessions, catalog.variants[LONG_SKU], 100)
            await wait_positioned(engine)
            if await server.metric("gql_inventory_slow_subscribers_dropped_total") >= 1:
                break
        assert await server.metric("gql_inventory_slow_subscribers_dropped_total") == 1
    finally:
        stalled.transport.abort()  # it never reads the 4008 close: it just goes

    async def freed() -> bool:
        return await gauges(server) == (0, 0, 0)

    await eventually(freed, what="gauges back to zero after the 4008 close")
    await assert_new_client_gets_a_change(server, sessions, catalog)


class ServeProcess(LiveServer):
    """`gql-inventory serve` (the CLI command) instead of a bare uvicorn."""

    def _spawn(self, uvicorn_args: tuple[str, ...]) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gql_inventory.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("command", ["gql-inventory serve", "uvicorn"])
async def test_sigterm_closes_subscribers_with_1001_and_exits(
    command: str,
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    """SIGTERM with live subscribers (and one connection still starting): every client is
    closed with 1001 (going away) and the process exits (15 s is only a hang guard)."""
    async with sessions.begin() as session:
        await make_catalog(session)
    kind = ServeProcess if command == "gql-inventory serve" else LiveServer
    server = kind(database_url, tmp_path / "server.log")
    await server.start()
    try:
        after = cursor_at(await wait_positioned(engine) - 1)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(GraphQLWS.connect(server.ws_url)) for _ in range(5)
            ]
            for client in clients:
                op = await client.subscribe(STOCK_CHANGED, {"after": after})
                await client.data(op)
            starting = await stack.enter_async_context(GraphQLWS.connect(server.ws_url))
            await starting.subscribe(STOCK_CHANGED, {"after": after})

            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            codes = await asyncio.gather(*(close_code(c.ws) for c in [*clients, starting]))
            assert codes == [1001] * 6
            reasons = {c.ws.close_reason for c in clients}
            assert reasons == {"server shutting down"}

        process = server.process
        returncode = await asyncio.wait_for(asyncio.to_thread(process.wait), 15)
        assert returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM), server.log()
        assert "Traceback" not in server.log()
    finally:
        await server.stop()


async def test_reap_ends_a_task_that_swallowed_its_cancellation() -> None:
    """A task that loses a cancellation (as `asyncio.wait_for` can on Python 3.11) is
    cancelled again until it ends; a well-behaved task needs one cancellation."""
    cancels = 0

    async def swallows_first_cancel() -> None:
        nonlocal cancels
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancels += 1
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancels += 1
            raise

    stubborn = asyncio.create_task(swallows_first_cancel())
    polite = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)
    async with asyncio.timeout(WAIT):  # a hang guard
        again = await reap([stubborn, polite], interval=0.05)
    assert stubborn.cancelled()
    assert polite.cancelled()
    assert cancels == 2
    assert again == 1
