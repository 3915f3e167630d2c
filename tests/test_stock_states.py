"""Stock states (issue 16 item 1, docs/adr/0017-stock-states.md): moveStockState, its
ledger row, the CHECKs behind it, and units out of AVAILABLE never reserved or sold."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.shortages import (
    InsufficientStock,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.live.alerts import AlertTracker, LowStockState
from gql_inventory.live.relay import assign_positions
from gql_inventory.models import StockState
from gql_inventory.stock import reservations, states
from gql_inventory.stock.adjust import AdjustResult
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import (
    ADJUST,
    LEVEL,
    MOVEMENT,
    RESERVE,
    SET,
    USER_ERRORS,
    errors_of,
    ledger_count,
    reserve,
    snapshot,
)
from tests.support.invariants import assert_invariants
from tests.support.scenarios import (
    Work,
    assert_history_sound,
    assert_only,
    fetch_all,
    fetch_one,
    run_concurrently,
)

Sessions = async_sessionmaker[AsyncSession]

STATE_LEVEL = LEVEL + " unavailable damaged qualityControl safetyStock"
MOVE = f"""mutation($input: MoveStockStateInput!) {{ moveStockState(input: $input) {{
  stockLevel {{ {STATE_LEVEL} }} movement {{ {MOVEMENT} fromState toState }} {USER_ERRORS} }} }}"""
VARIANT_STATES = f"""query($sku: String!) {{ variant(sku: $sku) {{
  onHand reserved available unavailable stockLevels {{ {STATE_LEVEL} }} }} }}"""


async def _move(gql: GraphQLCaller, **input_: Any) -> dict[str, Any]:
    body = await gql(MOVE, {"input": {"sku": "MUG", **input_}}, admin=True)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["moveStockState"]
    return payload


def _figures(level: dict[str, Any]) -> tuple[int, ...]:
    """(onHand, reserved, available, unavailable, damaged, qualityControl, safetyStock)."""
    keys = ("onHand", "reserved", "available", "unavailable", "damaged", "qualityControl")
    return (*(level[k] for k in keys), level["safetyStock"])


async def test_state_moves_write_one_state_change_row_each(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    main = str(catalog.locations["Main"])
    rows_before = await ledger_count(sessions)
    damaged = await _move(gql, quantity=5, **{"from": "AVAILABLE", "to": "DAMAGED"})
    assert damaged["userErrors"] == []
    assert _figures(damaged["stockLevel"]) == (50, 0, 45, 5, 5, 0, 0)
    movement = damaged["movement"]
    assert {k: v for k, v in movement.items() if k not in ("id", "occurredAt")} == {
        "kind": "STATE_CHANGE",
        "sku": "MUG",
        "location": {"id": main, "name": "Main"},
        "onHandDelta": 0,
        "reservedDelta": 0,
        "onHandAfter": 50,
        "reservedAfter": 0,
        "reason": None,
        "reference": None,
        "fromState": "AVAILABLE",
        "toState": "DAMAGED",
    }
    inspected = await _move(
        gql,
        quantity=2,
        locationId=main,
        reason="to QC",
        **{"from": "DAMAGED", "to": "QUALITY_CONTROL"},
    )
    assert _figures(inspected["stockLevel"]) == (50, 0, 45, 5, 3, 2, 0)
    assert (inspected["movement"]["fromState"], inspected["movement"]["toState"]) == (
        "DAMAGED",
        "QUALITY_CONTROL",
    )
    assert inspected["movement"]["reason"] == "to QC"
    back = await _move(gql, quantity=2, **{"from": "QUALITY_CONTROL", "to": "AVAILABLE"})
    assert _figures(back["stockLevel"]) == (50, 0, 47, 3, 3, 0, 0)
    kept = await _move(gql, quantity=4, **{"from": "AVAILABLE", "to": "SAFETY_STOCK"})
    assert _figures(kept["stockLevel"]) == (50, 0, 43, 7, 3, 0, 4)
    assert await ledger_count(sessions) == rows_before + 4

    body = await gql(VARIANT_STATES, {"sku": "MUG"})
    variant = body["data"]["variant"]
    assert (variant["onHand"], variant["reserved"], variant["available"]) == (50, 0, 43)
    assert variant["unavailable"] == 7
    [level] = variant["stockLevels"]
    assert _figures(level) == (50, 0, 43, 7, 3, 0, 4)
    rows = await fetch_all(
        sessions,
        """SELECT kind, from_state, to_state, quantity, on_hand_delta, reserved_delta,
                  damaged_after, quality_control_after, safety_stock_after
             FROM stock_movements WHERE kind = 'STATE_CHANGE' ORDER BY id""",
    )
    assert [tuple(r) for r in rows] == [
        ("STATE_CHANGE", "AVAILABLE", "DAMAGED", 5, 0, 0, 5, 0, 0),
        ("STATE_CHANGE", "DAMAGED", "QUALITY_CONTROL", 2, 0, 0, 3, 2, 0),
        ("STATE_CHANGE", "QUALITY_CONTROL", "AVAILABLE", 2, 0, 0, 3, 0, 0),
        ("STATE_CHANGE", "AVAILABLE", "SAFETY_STOCK", 4, 0, 0, 3, 0, 4),
    ]
    await assert_history_sound(sessions, "MUG")
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    ("input_", "expected", "available"),
    [
        (
            {"quantity": 0, "from": "AVAILABLE", "to": "DAMAGED"},
            ("INVALID_INPUT", ["input", "quantity"]),
            None,
        ),
        (
            {"quantity": -3, "from": "AVAILABLE", "to": "DAMAGED"},
            ("INVALID_INPUT", ["input", "quantity"]),
            None,
        ),
        (
            {"quantity": 1, "from": "DAMAGED", "to": "DAMAGED"},
            ("INVALID_INPUT", ["input", "to"]),
            None,
        ),
        (
            {"quantity": 6, "from": "AVAILABLE", "to": "DAMAGED"},
            ("INSUFFICIENT_STOCK", ["input", "quantity"]),
            5,
        ),
        (
            {"quantity": 1, "from": "DAMAGED", "to": "AVAILABLE"},
            ("INSUFFICIENT_STOCK", ["input", "quantity"]),
            0,
        ),
        (
            {"quantity": 1, "sku": "NOPE", "from": "AVAILABLE", "to": "DAMAGED"},
            ("UNKNOWN_SKU", ["input", "sku"]),
            None,
        ),
        (
            {"quantity": 1, "locationId": "999999", "from": "AVAILABLE", "to": "DAMAGED"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            None,
        ),
    ],
    ids=[
        "zero",
        "negative",
        "same-state",
        "more-than-available",
        "empty-state",
        "unknown-sku",
        "unknown-location",
    ],
)
async def test_state_move_refusals_change_nothing(
    gql: GraphQLCaller,
    sessions: Sessions,
    catalog: Catalog,
    input_: dict[str, Any],
    expected: tuple[str, list[str]],
    available: int | None,
) -> None:
    await reserve(gql, {"MUG": 45})  # 5 left available
    before = await snapshot(sessions)
    payload = await _move(gql, **input_)
    assert (payload["stockLevel"], payload["movement"]) == (None, None)
    assert errors_of(payload) == [expected]
    if available is not None:
        error = payload["userErrors"][0]
        assert (error["requested"], error["available"]) == (input_["quantity"], available)
    assert await snapshot(sessions) == before


async def test_move_stock_state_is_admin_only(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql(
        MOVE, {"input": {"sku": "MUG", "quantity": 1, "from": "AVAILABLE", "to": "DAMAGED"}}
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


async def test_same_idempotency_key_moves_once(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    input_ = {
        "quantity": 3,
        "from": "AVAILABLE",
        "to": "DAMAGED",
        "idempotencyKey": "move-3f9a1c2e",
    }
    first = await _move(gql, **input_)
    rows = await ledger_count(sessions)
    second = await _move(gql, **input_)
    assert second["movement"]["id"] == first["movement"]["id"]
    assert second["stockLevel"]["damaged"] == 3
    assert await ledger_count(sessions) == rows
    conflict = await _move(gql, **{**input_, "quantity": 4})
    assert errors_of(conflict) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE stock_levels SET damaged = -1",
        "UPDATE stock_levels SET quality_control = -1",
        "UPDATE stock_levels SET safety_stock = -1",
        "UPDATE stock_levels SET damaged = on_hand - reserved + 1",
        "UPDATE stock_levels SET damaged = 20, quality_control = 20, safety_stock = 11",
        "UPDATE stock_levels SET reserved = on_hand - damaged + 1",
    ],
)
async def test_checks_refuse_a_direct_update_that_breaks_them(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog, statement: str
) -> None:
    """Whatever the code does, the database keeps every state >= 0 and reserved + unavailable
    within on hand (MUG: 50 on hand at Main)."""
    await _move(gql, quantity=2, **{"from": "AVAILABLE", "to": "DAMAGED"})
    before = await snapshot(sessions)
    states_before = await fetch_all(
        sessions, "SELECT id, damaged, quality_control, safety_stock FROM stock_levels ORDER BY id"
    )
    with pytest.raises(IntegrityError, match="ck_stock_levels_"):
        async with sessions.begin() as session:
            await session.execute(
                text(statement + " WHERE variant_id = :v"), {"v": catalog.variants["MUG"]}
            )
    assert await snapshot(sessions) == before
    assert (
        await fetch_all(
            sessions,
            "SELECT id, damaged, quality_control, safety_stock FROM stock_levels ORDER BY id",
        )
        == states_before
    )


async def test_a_damaged_unit_is_never_reserved_adjusted_away_or_counted_away(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _move(gql, quantity=48, **{"from": "AVAILABLE", "to": "DAMAGED"})
    before = await snapshot(sessions)
    body = await gql(RESERVE, {"input": {"lines": [{"sku": "MUG", "quantity": 3}]}})
    payload = body["data"]["reserveStock"]
    assert errors_of(payload) == [("INSUFFICIENT_STOCK", ["input", "lines", "0", "quantity"])]
    assert (payload["userErrors"][0]["requested"], payload["userErrors"][0]["available"]) == (3, 2)
    removed = await gql(
        ADJUST, {"input": {"sku": "MUG", "delta": -3, "reason": "LOST"}}, admin=True
    )
    error = removed["data"]["adjustStock"]["userErrors"][0]
    assert (error["code"], error["requested"], error["available"]) == ("INSUFFICIENT_STOCK", 3, 2)
    counted = await gql(SET, {"input": {"sku": "MUG", "onHand": 47}}, admin=True)
    error = counted["data"]["setStock"]["userErrors"][0]
    assert (error["code"], error["requested"], error["available"]) == ("INSUFFICIENT_STOCK", 3, 2)
    assert await snapshot(sessions) == before
    held = await reserve(gql, {"MUG": 2})  # the two available units still sell
    assert held["status"] == "ACTIVE"
    counted = await gql(SET, {"input": {"sku": "MUG", "onHand": 50}}, admin=True)
    assert counted["data"]["setStock"]["userErrors"] == []
    await assert_invariants(sessions)


async def test_a_move_to_damaged_raises_a_low_stock_alert(
    gql: GraphQLCaller, engine: AsyncEngine, catalog: Catalog
) -> None:
    """MUG: 50 on hand, threshold 5. Moving 46 units to DAMAGED leaves 4 available: LOW."""
    while await assign_positions(engine) is None:  # the catalog's own movements
        pass
    tracker = AlertTracker(engine, ttl=3600)
    await _move(gql, quantity=40, **{"from": "AVAILABLE", "to": "DAMAGED"})
    [event] = await _positioned(engine)
    assert (event.kind, event.available, event.damaged) == ("STATE_CHANGE", 10, 40)
    assert await tracker.apply(event) is None  # 10 > 5
    await _move(gql, quantity=6, **{"from": "AVAILABLE", "to": "QUALITY_CONTROL"})
    [event] = await _positioned(engine)
    alert = await tracker.apply(event)
    assert alert is not None
    assert (alert.state, alert.available, alert.threshold) == (LowStockState.LOW, 4, 5)
    await _move(gql, quantity=6, **{"from": "QUALITY_CONTROL", "to": "AVAILABLE"})
    [event] = await _positioned(engine)
    alert = await tracker.apply(event)
    assert alert is not None
    assert alert.state is LowStockState.BACK_IN_STOCK
    await _move(gql, quantity=6, **{"from": "AVAILABLE", "to": "DAMAGED"})  # 4 left: LOW
    [event] = await _positioned(engine)
    assert await tracker.apply(event) is not None
    fresh = AlertTracker(engine)  # loads the ledger's figures before the event: states count
    await _move(gql, quantity=1, **{"from": "AVAILABLE", "to": "SAFETY_STOCK"})
    [event] = await _positioned(engine)
    assert await fresh.apply(event) is None  # 4 -> 3: still LOW, no new alert
    await _move(gql, quantity=3, **{"from": "AVAILABLE", "to": "DAMAGED"})
    [event] = await _positioned(engine)
    alert = await fresh.apply(event)
    assert alert is not None
    assert (alert.state, alert.available) == (LowStockState.OUT_OF_STOCK, 0)


async def _positioned(engine: AsyncEngine) -> list[Any]:
    events = None
    while events is None:  # another relay pass holds the lock: try again
        events = await assign_positions(engine)
    return events


# ---------------------------------------------------------------- concurrency

LIMITS = ReservationLimits()


def _reserve_work(units: int) -> Work[uuid.UUID]:
    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.reserve(
            UnitOfWork(session, actor="system"), [LineRequest("MUG", units)], limits=LIMITS
        )

    return work


def _move_work(quantity: int, source: StockState, target: StockState) -> Work[AdjustResult]:
    async def work(session: AsyncSession) -> AdjustResult:
        return await states.move_stock_state(
            UnitOfWork(session, actor="admin:test"),
            sku="MUG",
            location_id=None,
            quantity=quantity,
            source=source,
            target=target,
        )

    return work


async def test_reserves_race_state_moves_on_one_level(sessions: Sessions, catalog: Catalog) -> None:
    """200 reserves and 60 state moves at once on MUG@Main (50 units, real connections):
    no CHECK fires, every refusal is INSUFFICIENT_STOCK, and the database's figures match
    what was accepted: no unit that was unavailable was ever reserved."""
    rng = random.Random(16)
    moves = [
        (q, s, t)
        for q, s, t in (
            (
                rng.randint(1, 4),
                StockState.AVAILABLE,
                rng.choice(
                    [StockState.DAMAGED, StockState.QUALITY_CONTROL, StockState.SAFETY_STOCK]
                ),
            )
            for _ in range(40)
        )
    ] + [(rng.randint(1, 3), StockState.DAMAGED, StockState.AVAILABLE) for _ in range(20)]
    jobs: list[tuple[str, Any, Work[Any]]] = [
        ("reserve", 1, _reserve_work(1)) for _ in range(200)
    ] + [("move", m, _move_work(*m)) for m in moves]
    rng.shuffle(jobs)
    outcomes = await run_concurrently(sessions, [work for _, _, work in jobs])

    assert_only(outcomes, InsufficientStock)
    reserved_ok = sum(
        o.ok for (kind, _, _), o in zip(jobs, outcomes, strict=True) if kind == "reserve"
    )
    net: dict[StockState, int] = dict.fromkeys(StockState, 0)
    for (kind, m, _), o in zip(jobs, outcomes, strict=True):
        if kind == "move" and o.ok:
            quantity, source, target = m
            net[source] -= quantity
            net[target] += quantity
    level = await fetch_one(
        sessions,
        """SELECT on_hand, reserved, damaged, quality_control, safety_stock
             FROM stock_levels WHERE variant_id = :v""",
        v=catalog.variants["MUG"],
    )
    assert level.on_hand == 50
    assert level.reserved == reserved_ok
    assert (level.damaged, level.quality_control, level.safety_stock) == (
        net[StockState.DAMAGED],
        net[StockState.QUALITY_CONTROL],
        net[StockState.SAFETY_STOCK],
    )
    assert level.reserved + level.damaged + level.quality_control + level.safety_stock <= 50
    moved_ok = sum(o.ok for (k, _, _), o in zip(jobs, outcomes, strict=True) if k == "move")
    print(
        f"\nreserves {reserved_ok}/200 ok, moves {moved_ok}/60 ok; "
        f"final reserved {level.reserved}, unavailable "
        f"{level.damaged + level.quality_control + level.safety_stock}"
    )
    await assert_history_sound(sessions, "MUG")
    await assert_invariants(sessions)
