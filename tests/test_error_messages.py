"""userError messages say what was asked and where: a refusal about one stock level names
its location (and gives its id as `locationId`); a reservation refusal says its figures
are summed over every location. Codes, paths and figures are checked elsewhere too."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import (
    reserve,
    snapshot,
)
from tests.support.invariants import assert_invariants

ERRORS = "userErrors { code message field sku requested available locationId }"
ADJUST = f"""mutation($input: AdjustStockInput!) {{ adjustStock(input: $input) {{
  stockLevel {{ onHand }} {ERRORS} }} }}"""
SET = f"""mutation($input: SetStockInput!) {{ setStock(input: $input) {{
  stockLevel {{ onHand }} {ERRORS} }} }}"""
RESERVE = f"""mutation($input: ReserveStockInput!) {{ reserveStock(input: $input) {{
  reservation {{ id }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: UpdateReservationInput!) {{ updateReservation(input: $input) {{
  reservation {{ id }} {ERRORS} }} }}"""


async def _only_error(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    query: str,
    name: str,
    input_: dict[str, Any],
    *,
    admin: bool = False,
) -> dict[str, Any]:
    """Send a refused mutation; check it changed nothing and return its one userError."""
    before = await snapshot(sessions)
    body = await gql(query, {"input": input_}, admin=admin)
    assert "errors" not in body, body
    errors: list[dict[str, Any]] = body["data"][name]["userErrors"]
    assert len(errors) == 1, errors
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)
    return errors[0]


async def test_set_stock_below_reserved_names_the_location_and_the_count(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    await reserve(gql, {"SHIRT-S": 9})  # all from Main; the variant still has 3 available
    error = await _only_error(
        gql, sessions, SET, "setStock", {"sku": "SHIRT-S", "onHand": 1}, admin=True
    )
    assert error == {
        "code": "INSUFFICIENT_STOCK",
        "message": "cannot set on hand of 'SHIRT-S' to 1 at Main: 9 are reserved",
        "field": ["input", "onHand"],
        "sku": "SHIRT-S",
        "requested": 9,  # units the count would remove
        "available": 1,  # units that could go
        "locationId": str(catalog.locations["Main"]),
    }


async def test_adjust_stock_removal_names_the_location_and_its_figures(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    await reserve(gql, {"SHIRT-S": 9})
    at_default = await _only_error(
        gql,
        sessions,
        ADJUST,
        "adjustStock",
        {"sku": "SHIRT-S", "delta": -5, "reason": "LOST"},
        admin=True,
    )
    assert at_default == {
        "code": "INSUFFICIENT_STOCK",
        "message": "cannot remove 5 of 'SHIRT-S' at Main: 10 on hand, 9 reserved (1 available)",
        "field": ["input", "delta"],
        "sku": "SHIRT-S",
        "requested": 5,
        "available": 1,
        "locationId": str(catalog.locations["Main"]),
    }
    store = str(catalog.locations["Store"])
    at_store = await _only_error(
        gql,
        sessions,
        ADJUST,
        "adjustStock",
        {"sku": "SHIRT-S", "locationId": store, "delta": -3, "reason": "DAMAGED"},
        admin=True,
    )
    assert at_store["message"] == (
        "cannot remove 3 of 'SHIRT-S' at Store: 2 on hand, 0 reserved (2 available)"
    )
    assert (at_store["requested"], at_store["available"], at_store["locationId"]) == (3, 2, store)


@pytest.mark.parametrize(
    ("query", "name", "input_"),
    [
        pytest.param(
            ADJUST,
            "adjustStock",
            {"sku": "SHIRT-S", "delta": 1, "reason": "FOUND", "expectedOnHand": 7},
            id="adjustStock",
        ),
        pytest.param(
            SET, "setStock", {"sku": "SHIRT-S", "onHand": 4, "expectedOnHand": 7}, id="setStock"
        ),
    ],
)
async def test_stock_changed_names_the_location(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    query: str,
    name: str,
    input_: dict[str, Any],
) -> None:
    error = await _only_error(gql, sessions, query, name, input_, admin=True)
    assert (error["code"], error["field"]) == ("STOCK_CHANGED", ["input", "expectedOnHand"])
    assert error["message"] == "on hand of 'SHIRT-S' at Main is 10, expected 7"
    assert error["locationId"] == str(catalog.locations["Main"])


async def test_reserve_refusal_counts_every_location(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    error = await _only_error(
        gql, sessions, RESERVE, "reserveStock", {"lines": [{"sku": "SHIRT-S", "quantity": 13}]}
    )
    assert error["message"] == "only 12 of 'SHIRT-S' available across all locations, 13 requested"
    assert (error["requested"], error["available"], error["locationId"]) == (13, 12, None)


async def test_update_reservation_refusal_counts_what_the_reservation_holds(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    rid = (await reserve(gql, {"SHIRT-S": 4}))["id"]
    error = await _only_error(
        gql,
        sessions,
        UPDATE,
        "updateReservation",
        {"reservationId": rid, "lines": [{"sku": "SHIRT-S", "quantity": 13}]},
    )
    assert error["message"] == (
        "only 12 of 'SHIRT-S' available across all locations "
        "(4 of them already in this reservation), 13 requested"
    )
    assert (error["requested"], error["available"], error["locationId"]) == (13, 12, None)
