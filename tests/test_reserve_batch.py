"""Group commit of reserveStock (ADR 0008): a batch ends as the same requests applied one
at a time, a failed batch applies nothing, and a committed one is published once.

The model-based test runs on its own event loop and engine (hypothesis drives a sync
test); each example builds the same starting state twice (identities restart, so ids
match) and applies the same requests through `reservations.reserve` one transaction at
a time (batches of one), then through `reserve_many` in one transaction; keyed requests
(fresh, repeated, conflicting, too short) are mixed in.
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

from gql_inventory.domain.errors import (
    DomainError,
    DomainErrors,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.rows import ReservationRow
from gql_inventory.domain.shortages import (
    InsufficientStock,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.db import create_engine, make_sessionmaker
from gql_inventory.reserving.batcher import ReserveBatcher
from gql_inventory.reserving.front import reserve_stock
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import reservations
from gql_inventory.stock.allocation import ReservationLimits
from gql_inventory.stock.invariants import find_violations
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reserve import ReserveRequest, reserve_many
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
#: Idempotency keys: none, two valid ones (so repeats and conflicts happen), a short one.
KEYS = [None, None, None, "key-one-0123456789", "key-two-0123456789", "short"]
request = st.tuples(
    st.lists(line, min_size=0, max_size=4),
    st.sampled_from([None, None, None, 60, 0, 99999]),
    st.sampled_from(["storefront", "admin:ops"]),
    st.sampled_from(KEYS),
)


def as_request(raw: tuple[list[tuple[str, int]], int | None, str, str | None]) -> ReserveRequest:
    lines, ttl, actor, key = raw
    return ReserveRequest(
        [LineRequest(sku, q) for sku, q in lines], ttl, actor, IdempotencyKey.of(key, owner=actor)
    )


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


def describe(outcome: uuid.UUID | Exception, first: dict[uuid.UUID, int]) -> Any:
    """An outcome without its random id: ("ok", index of the request that made the
    reservation: a replay names the first call), or every refusal's fields."""
    if not isinstance(outcome, DomainError):
        assert isinstance(outcome, uuid.UUID), outcome
        return ("ok", first[outcome])
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


def firsts(outcomes: Sequence[uuid.UUID | Exception]) -> dict[uuid.UUID, int]:
    """``{reservation id: index of the first request answered with it}``."""
    found: dict[uuid.UUID, int] = {}
    for i, o in enumerate(outcomes):
        if isinstance(o, uuid.UUID):
            found.setdefault(o, i)
    return found


def describe_all(outcomes: Sequence[uuid.UUID | Exception]) -> list[Any]:
    first = firsts(outcomes)
    return [describe(o, first) for o in outcomes]


async def state(engine: AsyncEngine, outcomes: Sequence[uuid.UUID | Exception]) -> Any:
    """Levels, reservations, lines, ledger rows and idempotency records, reservation ids
    replaced by request indexes; and the invariant violations."""
    index = {str(o): i for o, i in firsts(outcomes).items()}
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
        rkeys = (await conn.execute(text("SELECT id, idempotency_key FROM reservations"))).all()
        keys = (
            await conn.execute(
                text(
                    """SELECT owner, key, request_hash, result->>'reservation_id'
                         FROM idempotency_records ORDER BY owner, key"""
                )
            )
        ).all()
        violations = [v.describe() for v in await find_violations(conn)]
    return {
        "keys": [(*r[:3], index[r[3]]) for r in keys],
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
        "reservation_keys": sorted((index[str(r[0])], r[1]) for r in rkeys),
        "violations": violations,
    }


async def sequential(
    sessions: async_sessionmaker[AsyncSession], requests: Sequence[ReserveRequest]
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
                        idempotency_key=r.idempotency_key,
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
            async with conn.transaction():
                result = await reserve_many(conn, requests, limits=LIMITS)
            outcomes = [o.id if isinstance(o, ReservationRow) else o for o in result.outcomes]
            got = await state(engine, outcomes)
            return one_by_one, expected, outcomes, got, result.movements

        one_by_one, expected, outcomes, got, movements = loop.run_until_complete(both())
        assert describe_all(outcomes) == describe_all(one_by_one)
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
    services.events = sink  # read by `Services.after_commit`, which the batcher calls
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
    """reserveStock's use case; the new reservation's id."""
    reserved = await reserve_stock(
        services,
        [LineRequest(sku, q) for sku, q in lines],
        ttl_seconds=None,
        idempotency_key=None,
        actor="storefront",
    )
    return reserved.id


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
            batcher.reserve(ReserveRequest([LineRequest("A", 1)], None, "storefront")),
            batcher.reserve(ReserveRequest([LineRequest("B", 1)], None, "storefront")),
            return_exceptions=True,
        )
        # the batch of two applied nothing; alone, A went through and B was refused
        assert isinstance(direct[0], ReservationRow)
        assert "refused by the test" in str(direct[1])
        async with sessions() as session:
            assert (
                await session.execute(text("SELECT count(*) FROM reservations"))
            ).scalar_one() == 1
            assert (
                await session.execute(
                    text(
                        "SELECT count(DISTINCT txid) FROM stock_movements "
                        "WHERE kind = 'RESERVATION'"
                    )
                )
            ).scalar_one() == 1
        assert [(m.stock_level_id, m.reserved_delta) for m in sink.movements] == [(1, 1)]
        sink.movements.clear()

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
        [
            (str(direct[0].id), 1, 1),
            (str(outcomes[0]), 1, 2),
            (str(outcomes[3]), 1, 2),  # North had 2 left: A 3 is split
            (str(outcomes[3]), 2, 1),
        ]
    )
    # retried alone in arrival order: A 2, then A 3
    assert [(m.stock_level_id, m.reserved_delta) for m in sink.movements] == [
        (1, 2),
        (1, 2),
        (2, 1),
    ]
    await assert_invariants(sessions)

    # the worker reconnects and batches again
    assert isinstance(await ask(services, ("B", 5)), uuid.UUID)
    await assert_invariants(sessions)
