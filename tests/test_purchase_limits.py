"""Purchase limits (issue 16 item 5): a variant's `maxPerOrder` caps the units of it one
reservation may hold. reserveStock (the group commit and the lone path) and
updateReservation refuse more with PURCHASE_LIMIT_EXCEEDED and change nothing; a limit
lowered under a cart keeps the cart and refuses only increases."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import (
    DomainError,
    DomainErrors,
)
from gql_inventory.domain.shortages import (
    InsufficientStock,
    PurchaseLimitExceeded,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.reserving.front import reserve_stock
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import reservations
from gql_inventory.stock.allocation import ReservationLimits
from gql_inventory.stock.levels import LineRequest
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import RESERVE, UPDATE, errors_of, reserve, snapshot
from tests.support.invariants import assert_invariants
from tests.support.scenarios import Work, assert_history_sound, fetch_all, run_concurrently

Sessions = async_sessionmaker[AsyncSession]
LIMITS = ReservationLimits()


async def _limit(sessions: Sessions, sku: str, max_per_order: int | None) -> None:
    """Set a variant's limit straight in the database (updateVariantInventory is tested in
    test_variant_inventory.py)."""
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE variants SET max_per_order = :m WHERE sku = :sku"),
            {"m": max_per_order, "sku": sku},
        )


async def _reserve(gql: GraphQLCaller, lines: list[tuple[str, int]]) -> dict[str, Any]:
    body = await gql(RESERVE, {"input": {"lines": [{"sku": s, "quantity": q} for s, q in lines]}})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["reserveStock"]
    return payload


async def _update(gql: GraphQLCaller, rid: str, lines: list[tuple[str, int]]) -> dict[str, Any]:
    body = await gql(
        UPDATE,
        {
            "input": {
                "reservationId": rid,
                "lines": [{"sku": s, "quantity": q} for s, q in lines],
            }
        },
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["updateReservation"]
    return payload


def _figures(payload: dict[str, Any]) -> list[tuple[str, str | None, int | None, int | None]]:
    return [(e["code"], e["sku"], e["requested"], e["available"]) for e in payload["userErrors"]]


def _held(reservation: dict[str, Any]) -> dict[str, int]:
    held: dict[str, int] = {}
    for line in reservation["lines"]:
        sku = line["variant"]["sku"]
        held[sku] = held.get(sku, 0) + line["quantity"]
    return held


async def test_exactly_the_limit_is_accepted_and_one_more_refused(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _limit(sessions, "MUG", 3)
    held = await reserve(gql, {"MUG": 3})
    assert _held(held) == {"MUG": 3}

    before = await snapshot(sessions)
    refused = await _reserve(gql, [("MUG", 4)])
    assert refused["reservation"] is None
    assert errors_of(refused) == [("PURCHASE_LIMIT_EXCEEDED", ["input", "lines", "0", "quantity"])]
    assert _figures(refused) == [("PURCHASE_LIMIT_EXCEEDED", "MUG", 4, 3)]
    assert "at most 3" in refused["userErrors"][0]["message"]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_lines_of_one_sku_are_summed_against_the_limit(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _limit(sessions, "MUG", 3)
    before = await snapshot(sessions)
    refused = await _reserve(gql, [("SHIRT-S", 1), ("MUG", 2), ("MUG", 2)])
    # the SKU's first line is named, the figures are the merged quantity
    assert errors_of(refused) == [("PURCHASE_LIMIT_EXCEEDED", ["input", "lines", "1", "quantity"])]
    assert _figures(refused) == [("PURCHASE_LIMIT_EXCEEDED", "MUG", 4, 3)]
    assert await snapshot(sessions) == before
    accepted = await reserve(gql, {"SHIRT-S": 1, "MUG": 3})
    assert _held(accepted) == {"SHIRT-S": 1, "MUG": 3}


async def test_the_limit_is_checked_before_stock_and_every_refusal_is_reported(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    """CAP has no unit: asking past its limit says so (the buyer could never have more);
    a short line and a line past its limit are both reported."""
    await _limit(sessions, "CAP", 2)
    await _limit(sessions, "MUG", 5)
    before = await snapshot(sessions)
    refused = await _reserve(gql, [("CAP", 3), ("SHIRT-M", 4), ("MUG", 6)])
    assert _figures(refused) == [
        ("PURCHASE_LIMIT_EXCEEDED", "CAP", 3, 2),
        ("INSUFFICIENT_STOCK", "SHIRT-M", 4, 3),
        ("PURCHASE_LIMIT_EXCEEDED", "MUG", 6, 5),
    ]
    short = await _reserve(gql, [("CAP", 2)])  # within the limit: short of stock
    assert _figures(short) == [("INSUFFICIENT_STOCK", "CAP", 2, 0)]
    assert await snapshot(sessions) == before


async def test_an_update_past_the_limit_is_refused(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _limit(sessions, "MUG", 3)
    cart = await reserve(gql, {"MUG": 2, "SHIRT-S": 1})
    raised = await _update(gql, cart["id"], [("MUG", 3)])
    assert raised["userErrors"] == []
    assert _held(raised["reservation"]) == {"MUG": 3, "SHIRT-S": 1}

    before = await snapshot(sessions)
    refused = await _update(gql, cart["id"], [("SHIRT-S", 2), ("MUG", 4)])
    assert refused["reservation"] is None
    assert errors_of(refused) == [("PURCHASE_LIMIT_EXCEEDED", ["input", "lines", "1", "quantity"])]
    assert _figures(refused) == [("PURCHASE_LIMIT_EXCEEDED", "MUG", 4, 3)]
    assert await snapshot(sessions) == before  # SHIRT-S 2 was not applied either
    await assert_invariants(sessions)


async def test_a_lowered_limit_keeps_the_cart_and_refuses_only_increases(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    cart = await reserve(gql, {"MUG": 5})
    await _limit(sessions, "MUG", 3)

    # the cart keeps its 5, and changing another SKU of it works
    other = await _update(gql, cart["id"], [("SHIRT-S", 1)])
    assert other["userErrors"] == []
    assert _held(other["reservation"]) == {"MUG": 5, "SHIRT-S": 1}

    before = await snapshot(sessions)
    more = await _update(gql, cart["id"], [("MUG", 6)])
    # available: the most this reservation may hold, here what it already holds
    assert _figures(more) == [("PURCHASE_LIMIT_EXCEEDED", "MUG", 6, 5)]
    assert await snapshot(sessions) == before

    fewer = await _update(gql, cart["id"], [("MUG", 4)])  # a decrease, still above 3
    assert fewer["userErrors"] == []
    assert _held(fewer["reservation"])["MUG"] == 4
    back_up = await _update(gql, cart["id"], [("MUG", 5)])
    assert _figures(back_up) == [("PURCHASE_LIMIT_EXCEEDED", "MUG", 5, 4)]
    to_limit = await _update(gql, cart["id"], [("MUG", 2)])
    assert to_limit["userErrors"] == []
    within = await _update(gql, cart["id"], [("MUG", 3)])
    assert within["userErrors"] == []
    past = await _update(gql, cart["id"], [("MUG", 4)])
    assert _figures(past) == [("PURCHASE_LIMIT_EXCEEDED", "MUG", 4, 3)]
    await assert_invariants(sessions)


async def test_no_limit_and_a_removed_limit_refuse_nothing(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _limit(sessions, "MUG", 1)
    assert _figures(await _reserve(gql, [("MUG", 2)])) == [("PURCHASE_LIMIT_EXCEEDED", "MUG", 2, 1)]
    await _limit(sessions, "MUG", None)
    assert _held(await reserve(gql, {"MUG": 40})) == {"MUG": 40}


# ---------------------------------------------------------------- concurrency


def _reserve_work(quantity: int) -> Work[uuid.UUID]:
    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.reserve(
            UnitOfWork(session, actor="storefront"),
            [LineRequest("MUG", quantity)],
            limits=LIMITS,
        )

    return work


def _update_work(reservation_id: uuid.UUID, quantity: int) -> Work[uuid.UUID]:
    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.update_reservation(
            UnitOfWork(session, actor="storefront"),
            reservation_id,
            [LineRequest("MUG", quantity)],
            limits=LIMITS,
        )

    return work


def _refusals(error: Exception | None) -> list[DomainError]:
    if isinstance(error, DomainErrors):
        return error.errors
    assert isinstance(error, DomainError), repr(error)
    return [error]


async def _mug_per_reservation(sessions: Sessions) -> dict[uuid.UUID, int]:
    rows = await fetch_all(
        sessions,
        """SELECT r.id, sum(l.quantity) FROM reservations r
             JOIN reservation_lines l ON l.reservation_id = r.id
             JOIN variants v ON v.id = l.variant_id
            WHERE r.status = 'ACTIVE' AND v.sku = 'MUG'
            GROUP BY r.id""",
    )
    return {r[0]: int(r[1]) for r in rows}


async def test_many_buyers_at_once_each_stay_within_the_limit(
    sessions: Sessions, catalog: Catalog, database_url: str
) -> None:
    """MUG: 50 units at Main, maxPerOrder 3. 20 carts hold 1 each; then, at once on real
    connections, 120 new reservations of 1..5 units and 40 updates of those carts to
    0..5 units; then 60 more through the group commit. Every request past 3 is refused
    with PURCHASE_LIMIT_EXCEEDED, the others succeed or are short; every ACTIVE
    reservation holds at most 3 MUG; levels and ledger agree (invariants)."""
    await _limit(sessions, "MUG", 3)
    async with sessions.begin() as session:
        carts = [
            await reservations.reserve(
                UnitOfWork(session, actor="storefront"), [LineRequest("MUG", 1)], limits=LIMITS
            )
            for _ in range(20)
        ]
    rng = random.Random(5)
    jobs: list[tuple[str, int, Work[uuid.UUID]]] = [
        ("reserve", q, _reserve_work(q)) for q in (rng.randint(1, 5) for _ in range(120))
    ] + [
        ("update", q, _update_work(carts[i % 20], q))
        for i, q in enumerate(rng.randint(0, 5) for _ in range(40))
    ]
    rng.shuffle(jobs)
    outcomes = await run_concurrently(sessions, [work for _, _, work in jobs])

    for (kind, quantity, _), outcome in zip(jobs, outcomes, strict=True):
        if quantity > 3:
            assert not outcome.ok, (kind, quantity)
            [error] = _refusals(outcome.error)
            assert isinstance(error, PurchaseLimitExceeded), repr(error)
            assert (error.sku, error.requested, error.available) == ("MUG", quantity, 3)
        elif not outcome.ok:
            [error] = _refusals(outcome.error)
            assert isinstance(error, InsufficientStock), repr(error)
    limited = sum(q > 3 for _, q, _ in jobs)
    assert limited > 0

    services = Services.create(
        Settings(reserve_batch_max=256, live_events=False), database_url, live_events=False
    )
    try:
        asked = [rng.randint(1, 5) for _ in range(60)]
        batched = await asyncio.gather(
            *(
                reserve_stock(
                    services,
                    [LineRequest("MUG", q)],
                    ttl_seconds=None,
                    idempotency_key=None,
                    actor="storefront",
                )
                for q in asked
            ),
            return_exceptions=True,
        )
    finally:
        await services.close()
    for quantity, result in zip(asked, batched, strict=True):
        if quantity > 3:
            assert isinstance(result, PurchaseLimitExceeded), repr(result)
        elif isinstance(result, BaseException):
            assert isinstance(result, InsufficientStock), repr(result)

    held = await _mug_per_reservation(sessions)
    assert held, "some reservations were accepted"
    assert max(held.values()) <= 3
    reserved = await fetch_all(
        sessions,
        "SELECT sum(reserved) FROM stock_levels WHERE variant_id = :v",
        v=catalog.variants["MUG"],
    )
    assert int(reserved[0][0]) == sum(held.values()) <= 50
    print(
        f"\n{len(held)} ACTIVE reservations hold {sum(held.values())} MUG; "
        f"{limited} + {sum(q > 3 for q in asked)} requests past the limit refused"
    )
    await assert_history_sound(sessions, "MUG")
    await assert_invariants(sessions)
