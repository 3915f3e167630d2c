"""Resuming stockChanged with a cursor: exactly what was missed, then live; and every
version of every level exactly once while concurrent writers commit out of id order."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.support.catalog import Catalog, make_catalog, make_location, make_product
from tests.support.live import (
    STOCK_CHANGED,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    position_of,
    wait_positioned,
)

ADJUST = """mutation($sku: String!, $delta: Int!) {
  adjustStock(input: {sku: $sku, delta: $delta, reason: CORRECTION}) {
    movement { id } userErrors { code message } } }"""
RESERVE = """mutation($lines: [StockLineInput!]!) { reserveStock(input: {lines: $lines}) {
  reservation { id } userErrors { code } } }"""
RELEASE = """mutation($id: ID!) { releaseReservation(reservationId: $id) {
  userErrors { code } } }"""


async def adjust(server: LiveServer, sku: str, delta: int) -> None:
    body = await server.graphql(ADJUST, {"sku": sku, "delta": delta}, admin=True)
    assert body["data"]["adjustStock"]["userErrors"] == [], body


async def test_resume_gets_exactly_what_was_missed_then_live(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    async with sessions.begin() as session:
        await make_catalog(session)
    server = await servers.start()
    await wait_positioned(engine)
    start = await server.stock_cursor()

    async with GraphQLWS.connect(server.ws_url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"after": start})
        await adjust(server, "MUG", 1)
        (seen,) = await client.events(op, 1)
    last = seen["cursor"]

    skus = ["MUG", "SHIRT-S", "SHIRT-M", "SHIRT-L", "CAP"]
    missed = [(skus[i % len(skus)], i + 1) for i in range(50)]
    for sku, delta in missed:
        await adjust(server, sku, delta)

    async with GraphQLWS.connect(server.ws_url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"after": last})
        replayed = await client.events(op, 50)
        assert [(e["sku"], e["onHandDelta"]) for e in replayed] == missed
        positions = [position_of(e) for e in replayed]
        assert positions == list(range(position_of(seen) + 1, position_of(seen) + 51))
        # Then live, with nothing repeated at the seam.
        await adjust(server, "CAP", 100)
        await adjust(server, "MUG", -1)
        live = await client.events(op, 2)
        assert [(e["sku"], e["onHandDelta"]) for e in live] == [("CAP", 100), ("MUG", -1)]
        assert [position_of(e) for e in live] == [positions[-1] + 1, positions[-1] + 2]


async def make_wide_catalog(sessions: async_sessionmaker[AsyncSession], skus: list[str]) -> None:
    async with sessions.begin() as session:
        catalog = Catalog()
        catalog.locations["Main"] = await make_location(session, "Main", priority=10, default=True)
        catalog.locations["Store"] = await make_location(session, "Store", priority=20)
        for sku in skus:
            await make_product(
                session,
                catalog,
                sku.lower(),
                sku,
                [(sku, "Default Title", 1000, {"Main": 3, "Store": 10_000})],
            )


async def level_versions(engine: AsyncEngine) -> dict[tuple[str, str], int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT v.sku, s.location_id, s.version FROM stock_levels s "
                "JOIN variants v ON v.id = s.variant_id"
            )
        )
        return {(r.sku, str(r.location_id)): int(r.version) for r in rows}


async def slow_committer(
    sessions: async_sessionmaker[AsyncSession], level_ids: list[int], rounds: int, seed: int
) -> None:
    """Transactions that write movements, then hold the commit back a little: ids are
    handed out at insert, so later-committed rows often carry smaller ids."""
    rng = random.Random(seed)
    for _ in range(rounds):
        async with sessions.begin() as session:
            for level_id in sorted(rng.sample(level_ids, 2)):
                written = await apply_movement(
                    UnitOfWork(session, actor="system"),
                    level_id=level_id,
                    kind=MovementKind.ADJUSTMENT,
                    on_hand_delta=1,
                )
                assert written is not None
            await session.execute(text("SELECT pg_sleep(:t)"), {"t": rng.uniform(0.0, 0.15)})


async def http_writer(server: LiveServer, skus: list[str], rounds: int, seed: int) -> None:
    """Adjustments and reservations (which draw from both locations) over HTTP."""
    rng = random.Random(seed)
    for _ in range(rounds):
        if rng.random() < 0.5:
            await adjust(server, rng.choice(skus), rng.choice([1, 2, 3]))
        else:
            lines = [{"sku": s, "quantity": rng.randint(2, 5)} for s in rng.sample(skus, 2)]
            body = await server.graphql(RESERVE, {"lines": lines})
            payload = body["data"]["reserveStock"]
            assert payload["userErrors"] == [], payload
            if rng.random() < 0.5:
                await server.graphql(RELEASE, {"id": payload["reservation"]["id"]})


@pytest.mark.slow
async def test_concurrent_writers_every_version_exactly_once_across_resumes(
    servers: ServerFactory, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    skus = [f"SKU-{i:02d}" for i in range(12)]
    await make_wide_catalog(sessions, skus)
    server = await servers.start(LIVE_POLL_SECONDS="0.2")
    start_position = await wait_positioned(engine)
    before = await level_versions(engine)
    async with engine.connect() as conn:
        level_ids = [int(r[0]) for r in await conn.execute(text("SELECT id FROM stock_levels"))]

    received: list[dict[str, Any]] = []
    target: int | None = None
    resumes = 0

    async def subscriber() -> None:
        nonlocal resumes
        rng = random.Random(7)
        cursor = server.stock_cursor
        last = await cursor()
        while target is None or len(received) < target:
            async with GraphQLWS.connect(server.ws_url) as client:
                op = await client.subscribe(STOCK_CHANGED, {"after": last})
                for _ in range(rng.randint(5, 40)):  # then drop the connection mid-stream
                    if target is not None and len(received) >= target:
                        break
                    event = (await client.data(op))["stockChanged"]
                    received.append(event)
                    last = event["cursor"]
            resumes += 1

    reader = asyncio.create_task(subscriber())
    await asyncio.gather(
        *(http_writer(server, skus, 25, seed) for seed in range(4)),
        *(slow_committer(sessions, level_ids, 12, 100 + seed) for seed in range(2)),
    )
    top = await wait_positioned(engine)
    target = top - start_position + 1  # everything written, plus the sentinel below
    await adjust(server, skus[0], 1)
    await asyncio.wait_for(reader, 120)

    after = await level_versions(engine)
    assert resumes > 3
    assert len(received) == target
    assert [position_of(e) for e in received] == list(
        range(start_position + 1, start_position + target + 1)
    )
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for event in received:
        versions[(event["sku"], event["location"]["id"])].append(event["version"])
    for level, final in after.items():
        assert versions.get(level, []) == list(range(before[level] + 1, final + 1)), level
    # The figures of each event match the level's own ledger: onHand grows by the deltas.
    last_on_hand: dict[tuple[str, str], int] = {}
    for event in received:
        level = (event["sku"], event["location"]["id"])
        if level in last_on_hand:
            assert event["onHand"] == last_on_hand[level] + event["onHandDelta"]
        last_on_hand[level] = event["onHand"]
