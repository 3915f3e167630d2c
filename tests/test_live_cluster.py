"""Fan-out across server processes through broadcaster, and recovery of a lost backend.

The servers here poll the ledger only every 60 s, so anything delivered within
the tests' waits came through the broadcast backend (or its recovery path).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.live.pubsub import LISTEN_APPLICATION_NAME
from tests.support.catalog import make_catalog
from tests.support.live import (
    REDIS_URL,
    STOCK_CHANGED,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    eventually,
    position_of,
    reserve_on,
    wait_positioned,
)

ADJUST = """mutation($sku: String!, $delta: Int!) {
  adjustStock(input: {sku: $sku, delta: $delta, reason: FOUND}) { userErrors { code } } }"""

NO_POLL = {"LIVE_POLL_SECONDS": "60"}


async def hub_at(server: LiveServer, position: int) -> None:
    async def there() -> bool:
        return await server.metric("gql_inventory_hub_position") == position

    await eventually(there, what=f"the hub of {server.http_url} to reach {position}")


@pytest.mark.parametrize("backend", ["redis", "postgres"])
async def test_a_change_on_one_process_reaches_subscribers_on_another(
    backend: str,
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    async with sessions.begin() as session:
        await make_catalog(session)
    # Slow heartbeats too: a reconnect would also read the ledger (and hide a broken path).
    env = dict(NO_POLL, BROADCAST_HEARTBEAT_SECONDS="5")
    if backend == "redis":
        env["BROADCAST_URL"] = REDIS_URL
    first = await servers.start(**env)
    second = await servers.start(**env)
    top = await wait_positioned(engine)
    for server in (first, second):
        await hub_at(server, top)
    catch_ups = [await s.metric("gql_inventory_ledger_catch_ups_total") for s in (first, second)]
    start = await first.stock_cursor()

    async with (
        GraphQLWS.connect(first.ws_url) as on_first,
        GraphQLWS.connect(second.ws_url) as on_second,
    ):
        op_first = await on_first.subscribe(STOCK_CHANGED, {"after": start})
        op_second = await on_second.subscribe(STOCK_CHANGED, {"after": start})
        made = await reserve_on(first, ("MUG", 2))  # made on the first process
        assert made["userErrors"] == [], made
        made = await reserve_on(second, ("SHIRT-M", 1))  # made on the second
        assert made["userErrors"] == [], made
        for client, op in ((on_first, op_first), (on_second, op_second)):
            events = await client.events(op, 2)
            assert [(e["sku"], e["reservedDelta"]) for e in events] == [
                ("MUG", 2),
                ("SHIRT-M", 1),
            ]
            assert [position_of(e) for e in events] == [top + 1, top + 2]

    # Both hubs got the events as broadcast messages, not by reading the ledger.
    for server, before in zip((first, second), catch_ups, strict=True):
        await hub_at(server, top + 2)
        assert await server.metric("gql_inventory_ledger_catch_ups_total") == before


async def listen_pids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = :name"
            ),
            {"name": LISTEN_APPLICATION_NAME},
        )
        return [int(r[0]) for r in rows]


async def test_killed_listen_connection_reconnects_with_no_gap(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    async with sessions.begin() as session:
        await make_catalog(session)
    server = await servers.start(**NO_POLL)
    top = await wait_positioned(engine)
    await hub_at(server, top)

    async with GraphQLWS.connect(server.ws_url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"after": await server.stock_cursor()})
        await server.graphql(ADJUST, {"sku": "MUG", "delta": 1}, admin=True)
        (seen,) = await client.events(op, 1)

        (pid,) = await listen_pids(engine)
        async with engine.connect() as conn:
            killed = await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert killed.scalar_one() is True
        # Changes made while the process has no backend connection.
        deltas = list(range(2, 12))
        for delta in deltas:
            await server.graphql(ADJUST, {"sku": "CAP", "delta": delta}, admin=True)
        during = await client.events(op, len(deltas))
        assert [e["onHandDelta"] for e in during] == deltas
        assert [position_of(e) for e in during] == [
            position_of(seen) + 1 + i for i in range(len(deltas))
        ]

        async def reconnected() -> bool:
            pids = await listen_pids(engine)
            return bool(pids) and pid not in pids

        await eventually(reconnected, what="a new LISTEN connection")
        assert await server.metric("gql_inventory_broadcast_reconnects_total") >= 1
        # And live delivery goes on through the new connection.
        await server.graphql(ADJUST, {"sku": "MUG", "delta": 5}, admin=True)
        (after,) = await client.events(op, 1)
        assert (after["sku"], after["onHandDelta"]) == ("MUG", 5)
        assert position_of(after) == position_of(during[-1]) + 1
