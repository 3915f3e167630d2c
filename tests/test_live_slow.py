"""A subscriber that never reads: its bounded buffer overflows, the server closes it with a
reason (resume with your cursor), memory stays bounded, and the others keep receiving."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.support.catalog import Catalog, make_catalog, make_product
from tests.support.live import (
    STOCK_CHANGED,
    WAIT,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    eventually,
    position_of,
    wait_positioned,
)

BUFFER = 64
#: A 250-character SKU, selected 30 times (aliases) by the stalled client: each event is
#: ~8 KB on its wire, so the kernel's socket buffers (up to tcp_wmem's 4 MB) fill fast.
LONG_SKU = "LONG-" + "X" * 245


async def start_with_long_sku(
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    *serve_args: str,
    **env: str,
) -> tuple[Catalog, LiveServer]:
    """The test catalog plus a product of `LONG_SKU` (1 unit at Main), and a server with
    websocket pings 10 minutes apart (a stalled client must be closed by its buffer, not
    by a ping), started with `serve_args` and the settings `env`."""
    async with sessions.begin() as session:
        catalog = await make_catalog(session)
        await make_product(
            session, catalog, "long", "Long", [(LONG_SKU, "Default Title", 100, {"Main": 1})]
        )
    server = await servers.start(
        "--ws-ping-interval", "600", "--ws-ping-timeout", "600", *serve_args, **env
    )
    return catalog, server


FAT = "subscription { stockChanged { cursor " + " ".join(f"a{i}: sku" for i in range(30)) + " } }"


async def burst(sessions: async_sessionmaker[AsyncSession], variant_id: int, count: int) -> None:
    """One transaction of `count` movements (a relay batch fans them out at once)."""
    async with sessions.begin() as session:
        level_id = (
            await session.execute(
                text("SELECT id FROM stock_levels WHERE variant_id = :v"), {"v": variant_id}
            )
        ).scalar_one()
        for _ in range(count):
            written = await apply_movement(
                UnitOfWork(session, actor="system"),
                level_id=level_id,
                kind=MovementKind.ADJUSTMENT,
                on_hand_delta=1,
            )
            assert written is not None


async def open_stalled_socket(server: LiveServer) -> socket.socket:
    """A client socket with a tiny receive window (its reader will never read)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    return sock


async def connect_stalled(server: LiveServer) -> ClientConnection:
    """A graphql-transport-ws connection over `open_stalled_socket`, acknowledged, that
    keeps one message queued at most and no compression (what it does not read must not
    shrink on the wire); the caller closes it (``async with`` or ``transport.abort()``)."""
    stalled = await websockets.connect(
        server.ws_url,
        sock=await open_stalled_socket(server),
        subprotocols=[Subprotocol("graphql-transport-ws")],
        max_queue=1,
        compression=None,
    )
    await stalled.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await stalled.recv())["type"] == "connection_ack"
    return stalled


async def read_until_closed(ws: Any) -> None:
    while True:
        await ws.recv()


@pytest.mark.slow
async def test_a_subscriber_that_never_reads_is_closed_and_others_keep_receiving(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    catalog, server = await start_with_long_sku(
        servers,
        sessions,
        SUBSCRIBER_BUFFER_SIZE=str(BUFFER),
        LIVE_POLL_SECONDS="0.2",
    )
    await wait_positioned(engine)
    start = await server.stock_cursor()

    received: list[dict[str, Any]] = []
    async with GraphQLWS.connect(server.ws_url) as healthy:
        op = await healthy.subscribe(STOCK_CHANGED, {"after": start})

        async def read_forever() -> None:
            while True:
                received.append((await healthy.data(op))["stockChanged"])

        reader = asyncio.create_task(read_forever())
        try:
            async with await connect_stalled(server) as stalled:
                await stalled.send(
                    json.dumps({"id": "fat", "type": "subscribe", "payload": {"query": FAT}})
                )

                async def both_subscribed() -> bool:
                    return await server.metric("gql_inventory_subscribers", 'kind="stock"') == 2

                await eventually(both_subscribed, what="two subscribers")

                # Bursts of changes until the stalled client is dropped (bounded: 40 bursts).
                written = 0
                for _ in range(40):
                    await burst(sessions, catalog.variants[LONG_SKU], 100)
                    written += 100
                    await wait_positioned(engine)

                    async def healthy_caught_up(target: int = written) -> bool:
                        return len(received) >= target

                    await eventually(healthy_caught_up, what="the healthy client to keep up")
                    if await server.metric("gql_inventory_slow_subscribers_dropped_total") >= 1:
                        break
                assert await server.metric("gql_inventory_slow_subscribers_dropped_total") == 1
                # Memory stays bounded: the stalled subscriber's buffer is gone, and what
                # waits in the others' is within their bound.
                assert await server.metric("gql_inventory_subscribers", 'kind="stock"') == 1
                assert await server.metric("gql_inventory_subscriber_queued_events") <= BUFFER

                # The healthy client got every change, in order, and still gets new ones.
                await burst(sessions, catalog.variants["SHIRT-M"], 1)
                total = written + 1

                async def all_received() -> bool:
                    return len(received) >= total

                await eventually(all_received, what="every event at the healthy client")
                first = position_of({"cursor": start}) + 1
                assert [position_of(e) for e in received] == list(range(first, first + total))
                assert received[-1]["sku"] == "SHIRT-M"

                # The stalled client, once it reads, finds what was already on the wire and
                # then the server's close frame with the reason.
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(read_until_closed(stalled), WAIT)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4008
                assert "resume" in closed.value.rcvd.reason
        finally:
            reader.cancel()
