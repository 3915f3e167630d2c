"""Group commit of reserveStock (ADR 0008): a batch ends as the same requests applied one
at a time, a failed batch applies nothing, and a committed one is published once.

The model-based test runs on its own event loop and engine (hypothesis drives a sync
test); each example builds the same starting state twice (identities restart, so ids
match) and applies the same requests through `reservations.reserve` one transaction at
a time, then through `reserve_batch` in one transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import DomainError, DomainErrors, InsufficientStock
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.db import create_engine, make_sessionmaker
from gql_inventory.reserving.batcher import BatchAborted, ReserveBatcher, Reserved
from gql_inventory.reserving.front import reserve_stock
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import reservations
from gql_inventory.stock.allocation import ReservationLimits
from gql_inventory.stock.invariants import find_violations
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reserve_batch import BatchRequest, reserve_batch
from tests.conftest import _TABLES
from tests.support.catalog import Catalog, make_location, make_product
from tests.support.invariants import assert_invariants
from tests.support.sinks import RecordingSink

LIMITS = ReservationLimits(
    default_ttl_seconds=900, max_ttl_seconds=3600, max_lines=3, max_quantity=6
)
SKUS = ("A", "B", "C", "EMPTY")  # EMPTY: a variant without any stock level
LOCATIONS = ("North", "South", "West")

# ---------------------------------------------------------------- strategies

stocks = st.fixed_dictionaries(
    {sku: st.dictionaries(st.sampled_from(LOCATIONS), st.integers(0, 6)) for sku in SKUS[:3]}
)
priorities = st.lists(st.integers(1, 3), min_size=3, max_size=3)  # ties: location id decides
line = st.tuples(
    st.sampled_from([*SKUS, "A", "B", " A ", "NOPE", ""]),
    st.sampled_from([1, 1, 2, 3, 5, 0, 7]),
)
request = st.tuples(
    st.lists(line, min_size=0, max_size=4),
    st.sampled_from([None, None, None, 60, 0, 99999]),
    st.sampled_from(["storefront", "admin:ops"]),
)


def as_request(raw: tuple[list[tuple[str, int]], int | None, str]) -> BatchRequest:
    lines, ttl, actor = raw
    return BatchRequest([LineRequest(sku, q) for sku, q in lines], ttl, actor)


# ---------------------------------------------------------------- the two runs


async def build(
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    stock: dict[str, dict[str, int]],
    prio: list[int],
) -> None:
    """Empty tables, then the same catalog (same ids) for both runs."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    catalog = Catalog()
    async with sessions.begin() as session:
        for name, priority in zip(LOCATIONS, prio, strict=True):
            catalog.locations[name] = await make_location(session, name, priority=priority)
        for sku in SKUS:
            await make_product(
                session,
                catalog,
                sku.lower(),
                sku,
                [(sku, "Default Title", 100, stock.get(sku, {}))],
            )


def describe(outcome: uuid.UUID | Exception) -> Any:
    """An outcome without its random id: "ok", or every refusal's fields."""
    if not isinstance(outcome, DomainError):
        assert isinstance(outcome, uuid.UUID), outcome
        return "ok"
    errors = outcome.errors if isinstance(outcome, DomainErrors) else [outcome]
    return [
        (
            type(e).__name__,
            e.code,
            e.message,
            e.field,
            getattr(e, "sku", None),
            getattr(e, "requested", None),
            getattr(e, "available", None),
        )
        for e in errors
    ]


async def state(engine: AsyncEngine, outcomes: Sequence[uuid.UUID | Exception]) -> Any:
    """Levels, reservations, lines and ledger rows, reservation ids replaced by request
    indexes; and the invariant violations."""
    index = {str(o): i for i, o in enumerate(outcomes) if isinstance(o, uuid.UUID)}
    async with engine.connect() as conn:
        levels = (
            await conn.execute(
                text("SELECT id, on_hand, reserved, version FROM stock_levels ORDER BY id")
            )
        ).all()
        held = (
            await conn.execute(
                text(
                    """SELECT r.id, r.status, r.ttl_seconds, rl.stock_level_id, rl.variant_id,
                              rl.location_id, rl.quantity
                         FROM reservations r JOIN reservation_lines rl ON rl.reservation_id = r.id
                        ORDER BY rl.id"""
                )
            )
        ).all()
        ledger = (
            await conn.execute(
                text(
                    """SELECT stock_level_id, variant_id, location_id, kind, on_hand_delta,
                              reserved_delta, on_hand_after, reserved_after, version,
                              reference, actor
                         FROM stock_movements ORDER BY id"""
                )
            )
        ).all()
        violations = [v.describe() for v in await find_violations(conn)]
    return {
        "levels": [tuple(r) for r in levels],
        "lines": [(index[str(r[0])], *r[1:]) for r in held],
        "ledger": [
            (
                *r[:9],
                index[r.reference.split(":", 1)[1]] if r.kind == "RESERVATION" else r.reference,
                r.actor,
            )
            for r in ledger
        ],
        "violations": violations,
    }


async def sequential(
    sessions: async_sessionmaker[AsyncSession], requests: Sequence[BatchRequest]
) -> list[uuid.UUID | Exception]:
    outcomes: list[uuid.UUID | Exception] = []
    for r in requests:
        try:
            async with sessions.begin() as session:
                outcomes.append(
                    await reservations.reserve(
                        UnitOfWork(session, actor=r.actor),
                        r.lines,
                        limits=LIMITS,
                        ttl_seconds=r.ttl_seconds,
                    )
                )
        except DomainError as error:
            outcomes.append(error)
    return outcomes


def test_one_batch_matches_one_at_a_time(database_url: str) -> None:
    loop = asyncio.new_event_loop()
    engine = loop.run_until_complete(_engine(database_url))
    sessions = make_sessionmaker(engine)
    conn = loop.run_until_complete(asyncpg.connect(database_url))

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(stock=stocks, prio=priorities, raw=st.lists(request, min_size=1, max_size=12))
    def check(stock: dict[str, dict[str, int]], prio: list[int], raw: list[Any]) -> None:
        requests = [as_request(r) for r in raw]

        async def both() -> tuple[Any, Any, Any, Any, list[Any]]:
            await build(sessions, engine, stock, prio)
            one_by_one = await sequential(sessions, requests)
            expected = await state(engine, one_by_one)
            await build(sessions, engine, stock, prio)
            result = await reserve_batch(conn, requests, limits=LIMITS)
            got = await state(engine, result.outcomes)
            return one_by_one, expected, result.outcomes, got, result.movements

        one_by_one, expected, outcomes, got, movements = loop.run_until_complete(both())
        assert [describe(o) for o in outcomes] == [describe(o) for o in one_by_one]
        assert got == expected
        assert got["violations"] == []
        # what the batch returns for publishing is what it wrote, in ledger order
        assert [(m.stock_level_id, m.version, m.reserved_after) for m in movements] == [
            (r[0], r[8], r[7]) for r in got["ledger"] if r[3] == "RESERVATION"
        ]

    try:
        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.run_until_complete(engine.dispose())
        loop.close()


async def _engine(url: str) -> AsyncEngine:
    return create_engine(url, pool_size=2, max_overflow=2)


# ---------------------------------------------------------------- the batcher in process


@pytest.fixture
async def batched(database_url: str, engine: AsyncEngine) -> Any:
    """Services with group commit on (their own pool and batcher), events recorded."""
    services = Services.create(
        Settings(reserve_batch_max=256, live_events=False), database_url, live_events=False
    )
    sink = RecordingSink()
    services.events = sink
    assert services.reserve_batcher is not None
    services.reserve_batcher._events = sink
    yield services, sink
    await services.close()


async def shop(sessions: async_sessionmaker[AsyncSession]) -> Catalog:
    catalog = Catalog()
    async with sessions.begin() as session:
        catalog.locations["North"] = await make_location(session, "North", priority=1)
        catalog.locations["South"] = await make_location(session, "South", priority=2)
        await make_product(
            session, catalog, "a", "A", [("A", "Default Title", 100, {"North": 5, "South": 5})]
        )
        await make_product(session, catalog, "b", "B", [("B", "Default Title", 100, {"North": 5})])
    return catalog


async def ask(services: Services, *lines: tuple[str, int]) -> uuid.UUID:
    """reserveStock's use case; the new reservation's id (whichever path answered)."""
    reserved = await reserve_stock(
        services,
        [LineRequest(sku, q) for sku, q in lines],
        ttl_seconds=None,
        idempotency_key=None,
        actor="storefront",
    )
    return reserved.id if isinstance(reserved, Reserved) else reserved


async def test_committed_batch_answers_each_caller_and_publishes_once(
    batched: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    services, sink = batched
    await shop(sessions)

    outcomes = await asyncio.gather(
        ask(services, ("A", 4)),
        ask(services, ("A", 4), ("B", 1)),  # A: 1 from North, 3 from South
        ask(services, ("A", 3)),  # 2 left
        ask(services, ("B", 4)),
        return_exceptions=True,
    )

    assert [type(o).__name__ for o in outcomes] == ["UUID", "UUID", "ShortAcrossLocations", "UUID"]
    short = outcomes[2]
    assert isinstance(short, InsufficientStock)
    assert (short.sku, short.requested, short.available) == ("A", 3, 2)
    async with sessions() as session:
        txids = (
            await session.execute(
                text("SELECT DISTINCT txid FROM stock_movements WHERE kind = 'RESERVATION'")
            )
        ).all()
    assert len(txids) == 1  # one transaction for the four calls
    assert [
        (m.stock_level_id, m.reserved_delta, m.reserved_after, m.version) for m in sink.movements
    ] == [
        (1, 4, 4, 2),  # A North
        (1, 1, 5, 3),
        (2, 3, 3, 2),  # A South
        (3, 1, 1, 2),  # B North
        (3, 4, 5, 3),
    ]
    await assert_invariants(sessions)


async def test_a_batch_whose_write_fails_applies_nothing(
    batched: Any, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """A trigger refuses reservations on B's level: the batch rolls back as a whole,
    every caller is answered, and each is retried alone (only those on B fail)."""
    services, sink = batched
    await shop(sessions)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            """CREATE FUNCTION refuse_b() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.id = 3 AND NEW.reserved > OLD.reserved THEN
                   RAISE EXCEPTION 'refused by the test';
                 END IF;
                 RETURN NEW;
               END $$"""
        )
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse_b BEFORE UPDATE ON stock_levels "
            "FOR EACH ROW EXECUTE FUNCTION refuse_b()"
        )
    try:
        batcher = services.reserve_batcher
        assert isinstance(batcher, ReserveBatcher)
        direct = await asyncio.gather(
            batcher.reserve([LineRequest("A", 1)], ttl_seconds=None, actor="storefront"),
            batcher.reserve([LineRequest("B", 1)], ttl_seconds=None, actor="storefront"),
            return_exceptions=True,
        )
        assert [type(o) for o in direct] == [BatchAborted, BatchAborted]
        async with sessions() as session:
            assert (
                await session.execute(text("SELECT count(*) FROM reservations"))
            ).scalar_one() == 0
            assert (
                await session.execute(
                    text("SELECT count(*) FROM stock_movements WHERE kind = 'RESERVATION'")
                )
            ).scalar_one() == 0
        assert sink.movements == []

        outcomes = await asyncio.gather(
            ask(services, ("A", 2)),
            ask(services, ("A", 1), ("B", 1)),
            ask(services, ("B", 2)),
            ask(services, ("A", 3)),
            return_exceptions=True,
        )
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP TRIGGER refuse_b ON stock_levels")
            await conn.exec_driver_sql("DROP FUNCTION refuse_b()")

    assert [isinstance(o, uuid.UUID) for o in outcomes] == [True, False, False, True]
    assert all("refused by the test" in str(o) for o in outcomes[1:3])
    async with sessions() as session:
        held = (
            await session.execute(
                text(
                    "SELECT reservation_id, stock_level_id, quantity "
                    "FROM reservation_lines ORDER BY id"
                )
            )
        ).all()
    assert sorted((str(r[0]), r[1], r[2]) for r in held) == sorted(
        [(str(outcomes[0]), 1, 2), (str(outcomes[3]), 1, 3)]
    )
    assert [(m.stock_level_id, m.reserved_delta) for m in sink.movements] in (
        [(1, 2), (1, 3)],
        [(1, 3), (1, 2)],
    )
    await assert_invariants(sessions)

    # the worker reconnects and batches again
    assert isinstance(await ask(services, ("B", 5)), uuid.UUID)
    await assert_invariants(sessions)
