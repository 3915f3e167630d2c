"""Resuming from a cursor is bounded (issue 15 fault 8, docs/adr/0014-explicit-fan-out.md):
a cursor further behind the head than the replay window (a forged `stock:0` included) is
refused with CURSOR_EXPIRED before anything is replayed, admins get a larger window, a
cursor inside the window resumes with no gap and no duplicate, and replays beyond the
budgets wait their turn (or, past the queue time, are refused with REPLAY_BUSY): every
subscription is answered."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support.catalog import Catalog
from tests.support.live import (
    ADMIN_TOKEN,
    STOCK_CHANGED,
    GraphQLWS,
    ServerFactory,
    cursor_at,
    eventually,
    position_of,
    wait_positioned,
)
from tests.test_live_slow import FAT, LONG_SKU, burst, connect_stalled, start_with_long_sku

WINDOW = 20


async def test_a_forged_cursor_outside_the_window_is_refused_before_any_replay(
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    engine: AsyncEngine,
) -> None:
    server = await servers.start(REPLAY_MAX_EVENTS=str(WINDOW), REPLAY_MAX_EVENTS_ADMIN="1000")
    await burst(sessions, catalog.variants["MUG"], WINDOW + 10)
    top = await wait_positioned(engine)
    forged = cursor_at(0)  # base64("stock:0")
    async with (
        GraphQLWS.connect(server.ws_url) as anonymous,
        GraphQLWS.connect(server.ws_url, {"authorization": ADMIN_TOKEN}) as admin,
    ):
        await anonymous.subscribe(STOCK_CHANGED, {"after": forged}, "forged")
        error = await anonymous.error("forged")  # the first message: nothing was replayed
        assert error["extensions"]["code"] == "CURSOR_EXPIRED"
        assert "without `after`" in error["message"]
        assert "re-read" in error["message"]

        # Inside the window: every missed event once, in order, then live.
        inside = top - WINDOW
        await anonymous.subscribe(STOCK_CHANGED, {"after": cursor_at(inside)}, "inside")
        events = await anonymous.events("inside", WINDOW)
        assert [position_of(e) for e in events] == list(range(inside + 1, top + 1))

        # Admins get a larger window (still bounded).
        await admin.subscribe(STOCK_CHANGED, {"after": forged}, "admin")
        events = await admin.events("admin", top)
        assert [position_of(e) for e in events] == list(range(1, top + 1))
    assert "live.replay_refused" in server.log()


async def test_replays_beyond_the_budgets_wait_their_turn_and_all_are_answered(
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    engine: AsyncEngine,
) -> None:
    server = await servers.start(REPLAY_CONCURRENCY="1", REPLAY_PER_CONNECTION="1")
    await burst(sessions, catalog.variants["MUG"], 30)
    top = await wait_positioned(engine)
    start = top - 30
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(GraphQLWS.connect(server.ws_url)) for _ in range(3)
        ]
        for client in clients:  # 6 replays at once: 1 runs, 5 wait
            for op_id in ("a", "b"):
                await client.subscribe(STOCK_CHANGED, {"after": cursor_at(start)}, op_id)
        for client in clients:
            for op_id in ("a", "b"):
                events = await client.events(op_id, 30)
                assert [position_of(e) for e in events] == list(range(start + 1, top + 1))
    assert "live.replay_queued" in server.log()


@pytest.mark.slow
async def test_a_replay_that_cannot_get_a_slot_in_time_is_refused_busy(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """A client that never reads holds the only slot with a long replay (its writes are
    paced by its socket); another resume waits the queue time, then gets REPLAY_BUSY."""
    catalog, server = await start_with_long_sku(
        servers,
        sessions,
        REPLAY_CONCURRENCY="1",
        REPLAY_QUEUE_SECONDS="1",
    )
    start = await wait_positioned(engine)
    for _ in range(15):
        await burst(sessions, catalog.variants[LONG_SKU], 100)
    await wait_positioned(engine)
    async with await connect_stalled(server) as stalled:
        query = FAT.replace("subscription {", "subscription($after: String) {").replace(
            "stockChanged {", "stockChanged(after: $after) {"
        )
        await stalled.send(
            json.dumps(
                {
                    "id": "hold",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": {"after": cursor_at(start)}},
                }
            )
        )

        async def holding() -> bool:
            return (
                "live.replay_queued" in server.log()
                or await server.metric(
                    "gql_inventory_subscription_events_sent_total", 'kind="stock"'
                )
                > 10
            )

        await eventually(holding, what="the stalled replay to hold the slot")
        async with GraphQLWS.connect(server.ws_url) as other:
            await other.subscribe(STOCK_CHANGED, {"after": cursor_at(start)}, "late")
            error = await asyncio.wait_for(other.error("late"), 30)
            assert error["extensions"]["code"] == "REPLAY_BUSY"
            assert error["extensions"]["retryAfter"] >= 1
    assert "live.replay_refused" in server.log()
