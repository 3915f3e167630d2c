"""updateVariantInventory (issue 16 item 6): a variant's inventory policy, backorder limit,
per-order limit and low-stock threshold in one admin call; omitted fields keep their
value; refusals change nothing; setLowStockThreshold stays and writes the same way."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import RESERVE, USER_ERRORS, errors_of, reserve, snapshot
from tests.support.scenarios import fetch_all, fetch_one

Sessions = async_sessionmaker[AsyncSession]

POLICY = "sku inventoryPolicy backorderLimit maxPerOrder lowStockThreshold"
UPDATE_VARIANT = f"""mutation($input: UpdateVariantInventoryInput!) {{
  updateVariantInventory(input: $input) {{ variant {{ {POLICY} }} {USER_ERRORS} }} }}"""
VARIANT_POLICY = f"""query($sku: String!) {{ variant(sku: $sku) {{ {POLICY} }} }}"""
SET_THRESHOLD = f"""mutation($input: SetLowStockThresholdInput!) {{
  setLowStockThreshold(input: $input) {{ variant {{ {POLICY} }} {USER_ERRORS} }} }}"""


async def _update(gql: GraphQLCaller, admin: bool = True, **input_: Any) -> dict[str, Any]:
    body = await gql(UPDATE_VARIANT, {"input": {"sku": "MUG", **input_}}, admin=admin)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["updateVariantInventory"]
    return payload


async def _row(sessions: Sessions, sku: str = "MUG") -> tuple[Any, ...]:
    row = await fetch_one(
        sessions,
        """SELECT inventory_policy, backorder_limit, max_per_order, low_stock_threshold
             FROM variants WHERE sku = :sku""",
        sku=sku,
    )
    return tuple(row)


async def _everything(sessions: Sessions) -> tuple[Any, ...]:
    """What a refused call must leave alone: every variant's settings, stock, ledger, keys."""
    variants = await fetch_all(
        sessions,
        """SELECT id, inventory_policy, backorder_limit, max_per_order, low_stock_threshold
             FROM variants ORDER BY id""",
    )
    return (tuple(tuple(v) for v in variants), await snapshot(sessions))


async def test_one_call_sets_every_field_and_writes_no_stock_movement(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    assert await _row(sessions) == ("DENY", None, None, 5)
    before = await snapshot(sessions)
    body = await gql(VARIANT_POLICY, {"sku": "MUG"})
    assert body["data"]["variant"] == {
        "sku": "MUG",
        "inventoryPolicy": "DENY",
        "backorderLimit": None,
        "maxPerOrder": None,
        "lowStockThreshold": 5,
    }
    payload = await _update(
        gql, inventoryPolicy="CONTINUE", backorderLimit=10, maxPerOrder=4, lowStockThreshold=7
    )
    expected = {
        "sku": "MUG",
        "inventoryPolicy": "CONTINUE",
        "backorderLimit": 10,
        "maxPerOrder": 4,
        "lowStockThreshold": 7,
    }
    assert payload == {"variant": expected, "userErrors": []}
    assert await _row(sessions) == ("CONTINUE", 10, 4, 7)
    assert (await gql(VARIANT_POLICY, {"sku": "MUG"}))["data"]["variant"] == expected
    assert await snapshot(sessions) == before  # settings, not stock: no ledger row


async def test_omitted_fields_keep_their_value_and_null_and_zero_clear(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _update(
        gql, inventoryPolicy="CONTINUE", backorderLimit=10, maxPerOrder=4, lowStockThreshold=7
    )
    assert (await _update(gql, maxPerOrder=0))["userErrors"] == []  # 0 removes the limit
    assert await _row(sessions) == ("CONTINUE", 10, None, 7)
    await _update(gql, maxPerOrder=2)
    assert (await _update(gql, maxPerOrder=None))["userErrors"] == []  # null: no limit too
    assert await _row(sessions) == ("CONTINUE", 10, None, 7)
    await _update(gql, backorderLimit=None)  # CONTINUE with no limit
    assert await _row(sessions) == ("CONTINUE", None, None, 7)
    await _update(gql, backorderLimit=0)  # CONTINUE promising nothing beyond stock
    assert await _row(sessions) == ("CONTINUE", 0, None, 7)
    # back to DENY: the stored backorder limit stays, unused, for a later CONTINUE
    assert (await _update(gql, inventoryPolicy="DENY"))["variant"]["backorderLimit"] == 0
    assert await _row(sessions) == ("DENY", 0, None, 7)
    await _update(gql, lowStockThreshold=0)
    assert await _row(sessions) == ("DENY", 0, None, 0)
    assert (await _update(gql))["userErrors"] == []  # nothing asked: nothing changes
    assert await _row(sessions) == ("DENY", 0, None, 0)
    assert await _row(sessions, "CAP") == ("DENY", None, None, 5)  # one variant only


async def test_a_new_limit_applies_to_the_next_reservation(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _update(gql, maxPerOrder=2)
    body = await gql(RESERVE, {"input": {"lines": [{"sku": "MUG", "quantity": 3}]}})
    assert errors_of(body["data"]["reserveStock"]) == [
        ("PURCHASE_LIMIT_EXCEEDED", ["input", "lines", "0", "quantity"])
    ]
    await _update(gql, maxPerOrder=0)
    assert (await reserve(gql, {"MUG": 3}))["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("input_", "field"),
    [
        ({"maxPerOrder": -1}, "maxPerOrder"),
        ({"maxPerOrder": 2_147_483_647}, "maxPerOrder"),
        ({"backorderLimit": -5, "inventoryPolicy": "CONTINUE"}, "backorderLimit"),
        ({"backorderLimit": 2_000_000_000, "inventoryPolicy": "CONTINUE"}, "backorderLimit"),
        ({"lowStockThreshold": -1}, "lowStockThreshold"),
        ({"lowStockThreshold": 1_000_001}, "lowStockThreshold"),
        ({"lowStockThreshold": None}, "lowStockThreshold"),
        ({"inventoryPolicy": None}, "inventoryPolicy"),
        ({"backorderLimit": 3}, "backorderLimit"),  # DENY (as stored): a limit means nothing
        ({"backorderLimit": 3, "inventoryPolicy": "DENY"}, "backorderLimit"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"idempotencyKey": "k" * 256}, "idempotencyKey"),
    ],
    ids=[
        "negative-limit",
        "absurd-limit",
        "negative-backorder-limit",
        "absurd-backorder-limit",
        "negative-threshold",
        "absurd-threshold",
        "null-threshold",
        "null-policy",
        "backorder-limit-with-deny",
        "backorder-limit-with-deny-sent",
        "empty-key",
        "long-key",
    ],
)
async def test_hostile_input_is_refused_and_changes_nothing(
    gql: GraphQLCaller,
    sessions: Sessions,
    catalog: Catalog,
    input_: dict[str, Any],
    field: str,
) -> None:
    before = await _everything(sessions)
    payload = await _update(gql, **{"lowStockThreshold": 9, "maxPerOrder": 2, **input_})
    assert payload["variant"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["input", field]), error
    assert error["message"]
    assert await _everything(sessions) == before


async def test_unknown_sku_and_out_of_range_ints_are_refused(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    before = await _everything(sessions)
    payload = await _update(gql, sku="NOPE", maxPerOrder=2)
    assert errors_of(payload) == [("UNKNOWN_SKU", ["input", "sku"])]
    assert payload["userErrors"][0]["sku"] == "NOPE"
    blank = await _update(gql, sku=" ", maxPerOrder=2)
    assert errors_of(blank) == [("UNKNOWN_SKU", ["input", "sku"])]
    body = await gql(
        UPDATE_VARIANT, {"input": {"sku": "MUG", "maxPerOrder": 2**31}}, admin=True
    )  # not a GraphQL Int: refused before any resolver runs
    assert body.get("data") is None
    assert "maxPerOrder" in body["errors"][0]["message"]
    assert await _everything(sessions) == before


async def test_update_variant_inventory_is_admin_only(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    before = await _everything(sessions)
    body = await gql(UPDATE_VARIANT, {"input": {"sku": "MUG", "maxPerOrder": 1}})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert await _everything(sessions) == before


async def test_same_idempotency_key_updates_once(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    input_ = {"maxPerOrder": 4, "lowStockThreshold": 7, "idempotencyKey": "variant-9c1e"}
    first = await _update(gql, **input_)
    assert first["userErrors"] == []
    # someone changes the threshold meanwhile; the repeated call must not undo it
    changed = await gql(SET_THRESHOLD, {"input": {"sku": "MUG", "threshold": 9}}, admin=True)
    assert changed["data"]["setLowStockThreshold"]["userErrors"] == []
    second = await _update(gql, **input_)
    assert second["userErrors"] == []
    assert second["variant"]["lowStockThreshold"] == 9
    assert await _row(sessions) == ("DENY", None, 4, 9)
    conflict = await _update(gql, **{**input_, "maxPerOrder": 5})
    assert errors_of(conflict) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await _row(sessions) == ("DENY", None, 4, 9)
    # omitted and explicitly null are different inputs under one key
    await _update(gql, backorderLimit=None, idempotencyKey="variant-null")
    omitted = await _update(gql, idempotencyKey="variant-null")
    assert errors_of(omitted) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]


async def test_set_low_stock_threshold_is_the_same_write(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    await _update(gql, maxPerOrder=3)
    body = await gql(SET_THRESHOLD, {"input": {"sku": "MUG", "threshold": 11}}, admin=True)
    payload = body["data"]["setLowStockThreshold"]
    assert payload["userErrors"] == []
    assert payload["variant"]["lowStockThreshold"] == 11
    assert payload["variant"]["maxPerOrder"] == 3  # the other settings are kept
    refused = await gql(SET_THRESHOLD, {"input": {"sku": "MUG", "threshold": -1}}, admin=True)
    assert errors_of(refused["data"]["setLowStockThreshold"]) == [
        ("INVALID_INPUT", ["input", "threshold"])
    ]
    assert await _row(sessions) == ("DENY", None, 3, 11)
