"""Adjustments and counts naming a state (issue 16 item 1, docs/adr/0017-stock-states.md):
adjustStock(state: DAMAGED, delta: +n) takes in units that arrive damaged, -n writes
damaged units off, setStock(state: DAMAGED, onHand: n) counts the damaged units; the
ledger row's from_state / to_state / quantity keep each state = units in - units out."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import (
    MOVEMENT,
    USER_ERRORS,
    errors_of,
    reserve,
    snapshot,
)
from tests.support.invariants import assert_invariants
from tests.support.scenarios import assert_history_sound, fetch_all, fetch_one

Sessions = async_sessionmaker[AsyncSession]

LEVEL = "onHand reserved available unavailable damaged qualityControl safetyStock version"
ADJUST = f"""mutation($input: AdjustStockInput!) {{ adjustStock(input: $input) {{
  stockLevel {{ {LEVEL} }} movement {{ {MOVEMENT} fromState toState }} {USER_ERRORS} }} }}"""
SET = f"""mutation($input: SetStockInput!) {{ setStock(input: $input) {{
  stockLevel {{ {LEVEL} }} movement {{ {MOVEMENT} fromState toState }} {USER_ERRORS} }} }}"""
BULK = f"""mutation($input: BulkAdjustStockInput!) {{ bulkAdjustStock(input: $input) {{
  movements {{ kind onHandDelta fromState toState }} {USER_ERRORS} }} }}"""


async def _call(gql: GraphQLCaller, op: str, name: str, **input_: Any) -> dict[str, Any]:
    body = await gql(op, {"input": {"sku": "MUG", **input_}}, admin=True)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"][name]
    return payload


def _figures(level: dict[str, Any]) -> tuple[int, ...]:
    """(onHand, reserved, available, unavailable, damaged, qualityControl, safetyStock)."""
    keys = ("onHand", "reserved", "available", "unavailable", "damaged", "qualityControl")
    return (*(level[k] for k in keys), level["safetyStock"])


async def _state_rows(sessions: Sessions) -> list[tuple[Any, ...]]:
    rows = await fetch_all(
        sessions,
        """SELECT kind, on_hand_delta, from_state, to_state, quantity, damaged_after,
                  quality_control_after
             FROM stock_movements
            WHERE from_state IS NOT NULL OR to_state IS NOT NULL ORDER BY id""",
    )
    return [tuple(r) for r in rows]


async def test_adjusting_a_state_takes_units_in_and_writes_them_off(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    """MUG: 50 on hand at Main. +3 DAMAGED arrive damaged (available unchanged); -2 DAMAGED
    writes two off; +4 QUALITY_CONTROL; -5 DAMAGED with 1 damaged is refused."""
    arrived = await _call(
        gql, ADJUST, "adjustStock", delta=3, reason="DAMAGED", state="DAMAGED", note="crushed"
    )
    assert arrived["userErrors"] == []
    assert _figures(arrived["stockLevel"]) == (53, 0, 50, 3, 3, 0, 0)
    movement = arrived["movement"]
    assert (movement["kind"], movement["onHandDelta"], movement["onHandAfter"]) == (
        "ADJUSTMENT",
        3,
        53,
    )
    assert (movement["fromState"], movement["toState"]) == (None, "DAMAGED")
    written_off = await _call(gql, ADJUST, "adjustStock", delta=-2, reason="LOST", state="DAMAGED")
    assert _figures(written_off["stockLevel"]) == (51, 0, 50, 1, 1, 0, 0)
    assert (written_off["movement"]["fromState"], written_off["movement"]["toState"]) == (
        "DAMAGED",
        None,
    )
    inspected = await _call(
        gql, ADJUST, "adjustStock", delta=4, reason="RECEIVED", state="QUALITY_CONTROL"
    )
    assert _figures(inspected["stockLevel"]) == (55, 0, 50, 5, 1, 4, 0)
    assert inspected["movement"]["kind"] == "RECEIPT"

    before = await snapshot(sessions)
    refused = await _call(gql, ADJUST, "adjustStock", delta=-5, reason="LOST", state="DAMAGED")
    assert (refused["stockLevel"], refused["movement"]) == (None, None)
    assert errors_of(refused) == [("INSUFFICIENT_STOCK", ["input", "delta"])]
    error = refused["userErrors"][0]
    assert (error["requested"], error["available"]) == (5, 1)
    assert "DAMAGED" in error["message"]
    assert await snapshot(sessions) == before

    plain = await _call(gql, ADJUST, "adjustStock", delta=1, reason="FOUND", state="AVAILABLE")
    assert _figures(plain["stockLevel"]) == (56, 0, 51, 5, 1, 4, 0)
    assert (plain["movement"]["fromState"], plain["movement"]["toState"]) == (None, None)
    assert await _state_rows(sessions) == [
        ("ADJUSTMENT", 3, None, "DAMAGED", 3, 3, 0),
        ("ADJUSTMENT", -2, "DAMAGED", None, 2, 1, 0),
        ("RECEIPT", 4, None, "QUALITY_CONTROL", 4, 1, 4),
    ]
    await assert_history_sound(sessions, "MUG")
    await assert_invariants(sessions)


async def test_writing_off_damaged_units_leaves_reserved_and_available_units_alone(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    """48 of MUG's 50 reserved, the other 2 moved to DAMAGED (0 available): the two damaged
    units can still be written off; an AVAILABLE removal of one unit cannot."""
    await reserve(gql, {"MUG": 48})
    moved = await gql(
        """mutation { moveStockState(input: {sku: "MUG", quantity: 2, from: AVAILABLE,
        to: DAMAGED}) { userErrors { code } } }""",
        admin=True,
    )
    assert moved["data"]["moveStockState"]["userErrors"] == []
    refused = await _call(gql, ADJUST, "adjustStock", delta=-1, reason="LOST")
    assert errors_of(refused) == [("INSUFFICIENT_STOCK", ["input", "delta"])]
    gone = await _call(gql, ADJUST, "adjustStock", delta=-2, reason="DAMAGED", state="DAMAGED")
    assert gone["userErrors"] == []
    assert _figures(gone["stockLevel"]) == (48, 48, 0, 0, 0, 0, 0)
    await assert_invariants(sessions)


async def test_counting_a_state_sets_its_units_and_moves_on_hand_with_it(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    counted = await _call(gql, SET, "setStock", onHand=4, state="DAMAGED")
    assert counted["userErrors"] == []
    assert _figures(counted["stockLevel"]) == (54, 0, 50, 4, 4, 0, 0)
    assert counted["movement"]["kind"] == "COUNT"
    assert (counted["movement"]["fromState"], counted["movement"]["toState"]) == (None, "DAMAGED")
    recounted = await _call(gql, SET, "setStock", onHand=1, state="DAMAGED", expectedOnHand=4)
    assert _figures(recounted["stockLevel"]) == (51, 0, 50, 1, 1, 0, 0)
    assert recounted["movement"]["onHandDelta"] == -3
    same = await _call(gql, SET, "setStock", onHand=1, state="DAMAGED")
    assert (same["movement"], same["userErrors"]) == (None, [])

    before = await snapshot(sessions)
    stale = await _call(gql, SET, "setStock", onHand=0, state="DAMAGED", expectedOnHand=4)
    assert errors_of(stale) == [("STOCK_CHANGED", ["input", "expectedOnHand"])]
    negative = await _call(gql, SET, "setStock", onHand=-1, state="DAMAGED")
    assert errors_of(negative) == [("INVALID_INPUT", ["input", "onHand"])]
    assert await snapshot(sessions) == before

    whole = await _call(gql, SET, "setStock", onHand=60)  # AVAILABLE: the level's on hand
    assert _figures(whole["stockLevel"]) == (60, 0, 59, 1, 1, 0, 0)
    assert await _state_rows(sessions) == [
        ("COUNT", 4, None, "DAMAGED", 4, 4, 0),
        ("COUNT", -3, "DAMAGED", None, 3, 1, 0),
    ]
    level = await fetch_one(
        sessions,
        "SELECT on_hand, damaged FROM stock_levels WHERE variant_id = :v",
        v=catalog.variants["MUG"],
    )
    assert tuple(level) == (60, 1)
    await assert_history_sound(sessions, "MUG")
    await assert_invariants(sessions)


async def test_state_adjustments_keep_their_idempotency_key_apart_from_plain_ones(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    """The state is part of the keyed input: the same key with another state conflicts."""
    input_ = {"delta": 2, "reason": "DAMAGED", "state": "DAMAGED", "idempotencyKey": "dmg-1"}
    first = await _call(gql, ADJUST, "adjustStock", **input_)
    again = await _call(gql, ADJUST, "adjustStock", **input_)
    assert again["movement"]["id"] == first["movement"]["id"]
    assert again["stockLevel"]["damaged"] == 2
    other = await _call(gql, ADJUST, "adjustStock", **{**input_, "state": "AVAILABLE"})
    assert errors_of(other) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    await assert_invariants(sessions)


async def test_bulk_adjust_lines_name_a_state(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    body = await gql(
        BULK,
        {
            "input": {
                "lines": [
                    {"sku": "MUG", "delta": 2, "reason": "DAMAGED", "state": "DAMAGED"},
                    {"sku": "CAP", "delta": 5, "reason": "RECEIVED"},
                ]
            }
        },
        admin=True,
    )
    payload = body["data"]["bulkAdjustStock"]
    assert payload["userErrors"] == []
    assert payload["movements"] == [
        {"kind": "ADJUSTMENT", "onHandDelta": 2, "fromState": None, "toState": "DAMAGED"},
        {"kind": "RECEIPT", "onHandDelta": 5, "fromState": None, "toState": None},
    ]
    before = await snapshot(sessions)
    body = await gql(
        BULK,
        {
            "input": {
                "lines": [
                    {"sku": "CAP", "delta": -1, "reason": "LOST"},
                    {"sku": "MUG", "delta": -3, "reason": "LOST", "state": "DAMAGED"},
                ]
            }
        },
        admin=True,
    )
    payload = body["data"]["bulkAdjustStock"]
    assert errors_of(payload) == [("INSUFFICIENT_STOCK", ["lines", "1", "delta"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)
