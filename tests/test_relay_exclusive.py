"""One relay at a time: relays of two processes racing over the same ledger give every
committed movement one position, gap-free, in version order per stock level
(live/relay.py: `pg_try_advisory_xact_lock`), and publish each movement once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.db import create_engine, make_sessionmaker
from gql_inventory.live.relay import Relay
from gql_inventory.live.wire import StockEvent
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.support.catalog import Catalog

WRITERS = 12
COMMITS_PER_WRITER = 15


async def _writer(
    sessions: async_sessionmaker[AsyncSession], level_ids: Sequence[int], n: int
) -> None:
    """`COMMITS_PER_WRITER` transactions of one movement each, on the levels in turn."""
    for i in range(COMMITS_PER_WRITER):
        async with sessions.begin() as session:
            written = await apply_movement(
                UnitOfWork(session, actor="system"),
                level_id=level_ids[(n + i) % len(level_ids)],
                kind=MovementKind.ADJUSTMENT,
                on_hand_delta=1,
            )
            assert written is not None


async def test_two_relays_racing_position_each_movement_once_in_version_order(
    database_url: str, catalog: Catalog
) -> None:
    # two "processes": each its own engine (pool) and relay; writers on their own engine
    engines = [create_engine(database_url) for _ in range(3)]
    published: list[list[StockEvent]] = [[], []]

    def collector(into: list[StockEvent]):  # type: ignore[no-untyped-def]
        async def publish(events: Sequence[StockEvent]) -> None:
            into.extend(events)

        return publish

    relays = [
        Relay(engines[i], collector(published[i]), poll_seconds=0.01, batch_size=7)
        for i in range(2)
    ]
    try:
        sessions = make_sessionmaker(engines[2])
        async with sessions() as session:
            level_ids = [
                int(r[0])
                for r in await session.execute(text("SELECT id FROM stock_levels ORDER BY id"))
            ]
        writing = asyncio.gather(*(_writer(sessions, level_ids, n) for n in range(WRITERS)))
        loops = [asyncio.create_task(relay.run()) for relay in relays]
        for relay in relays:
            relay.wake()
        await writing
        for relay in relays:  # whatever is still unpositioned, by either of them
            await relay.run_pass()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

        async with sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT id, stock_level_id, version, position FROM stock_movements"
                        " ORDER BY position"
                    )
                )
            ).all()
    finally:
        for engine in engines:
            await engine.dispose()

    total = len(rows)
    assert total >= WRITERS * COMMITS_PER_WRITER
    positions = [r.position for r in rows]
    assert positions == list(range(1, total + 1))  # every movement, once, no gap
    per_level: dict[int, list[int]] = {}
    for r in rows:
        per_level.setdefault(r.stock_level_id, []).append(r.version)
    for versions in per_level.values():
        assert versions == sorted(versions)  # position order = version order per level
    sent = [e for events in published for e in events]
    assert sorted(e.position for e in sent) == positions  # each published exactly once
