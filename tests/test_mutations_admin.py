"""Admin operations through GraphQL: adjustStock, setStock, refundOrder, cancelOrder and the
stockMovements ledger. Each needs `Authorization: Bearer <token>`; refusals are `userErrors`
with their input path and change nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.live.cursors import encode_cursor
from gql_inventory.orders import payment_outcomes
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import (
    ADJUST,
    CANCEL,
    MOVEMENTS,
    ORDER_QUERY,
    REFUND,
    RESERVATION_QUERY,
    SET,
    FailingProvider,
    errors_of,
    ledger_count,
    paid_order,
    pending_order,
    post,
    reserve,
    snapshot,
    variant_levels,
)
from tests.support.invariants import assert_invariants


def _refund_lines(order: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``{sku: (quantity, refundedQuantity)}`` of an order."""
    return {ln["variant"]["sku"]: (ln["quantity"], ln["refundedQuantity"]) for ln in order["lines"]}


async def _movements(gql: GraphQLCaller, **args: Any) -> dict[str, Any]:
    body = await gql(MOVEMENTS, args, admin=True)
    assert "errors" not in body, body
    connection: dict[str, Any] = body["data"]["stockMovements"]
    return connection


# ---------------------------------------------------------------- access


AUTHORIZATIONS = [
    pytest.param(None, id="no-header"),
    pytest.param("", id="empty-header"),
    pytest.param("Bearer wrong-token", id="wrong-token"),
    pytest.param("Bearer admin-secret-but-longer", id="token-with-suffix"),
    pytest.param("Bearer admin", id="token-prefix"),
    pytest.param("Bearer ", id="bearer-without-token"),
    pytest.param("Basic admin-secret", id="basic-scheme"),
    pytest.param("Token admin-secret", id="token-scheme"),
    pytest.param("admin-secret Bearer", id="reversed"),
]


def _admin_operations(order_id: str, pending_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("adjustStock", ADJUST, {"input": {"sku": "MUG", "delta": 5, "reason": "RECEIVED"}}),
        ("adjustStock", ADJUST, {"input": {"sku": "MUG", "delta": -5, "reason": "LOST"}}),
        ("setStock", SET, {"input": {"sku": "MUG", "onHand": 1}}),
        ("refundOrder", REFUND, {"input": {"orderId": order_id}}),
        ("refundOrder", REFUND, {"input": {"orderId": order_id, "restock": False}}),
        ("cancelOrder", CANCEL, {"input": {"orderId": order_id}}),
        ("cancelOrder", CANCEL, {"input": {"orderId": pending_id}}),
        ("stockMovements", MOVEMENTS, {}),
        ("order", ORDER_QUERY, {"id": order_id}),
    ]


@pytest.mark.parametrize("authorization", AUTHORIZATIONS)
async def test_admin_operations_refuse_without_a_valid_bearer_token(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    authorization: str | None,
) -> None:
    order_id, _ = await paid_order(gql, sessions, {"SHIRT-S": 2, "MUG": 1})
    pending_id, _ = await pending_order(gql, {"MUG": 3})
    before = await snapshot(sessions)
    for name, query, variables in _admin_operations(order_id, pending_id):
        body = await post(client, query, variables, authorization=authorization)
        assert body["data"] is None or body["data"][name] is None, (name, body)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (name, body)
        assert body["errors"][0]["path"] == [name]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    "authorization", ["Bearer admin-secret", "bearer admin-secret", "  Bearer   admin-secret  "]
)
async def test_admin_token_is_accepted(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    authorization: str,
) -> None:
    body = await post(client, MOVEMENTS, {"first": 1}, authorization=authorization)
    assert "errors" not in body, body
    assert len(body["data"]["stockMovements"]["edges"]) == 1
    await assert_invariants(sessions)


# ---------------------------------------------------------------- adjustStock


async def test_adjust_stock_movement_kinds_and_reasons(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    main, store = str(catalog.locations["Main"]), str(catalog.locations["Store"])
    received = await gql(
        ADJUST,
        {"input": {"sku": "MUG", "delta": 10, "reason": "RECEIVED", "note": "PO-1001"}},
        admin=True,
    )
    payload = received["data"]["adjustStock"]
    assert payload["userErrors"] == []
    assert payload["stockLevel"] == {
        "location": {"id": main, "name": "Main"},
        "onHand": 60,
        "reserved": 0,
        "available": 60,
        "version": 2,
    }
    movement = payload["movement"]
    assert {k: v for k, v in movement.items() if k not in ("id", "occurredAt")} == {
        "kind": "RECEIPT",
        "sku": "MUG",
        "location": {"id": main, "name": "Main"},
        "onHandDelta": 10,
        "reservedDelta": 0,
        "onHandAfter": 60,
        "reservedAfter": 0,
        "reason": "RECEIVED: PO-1001",
        "reference": None,
    }

    await reserve(gql, {"MUG": 5})
    damaged = await gql(
        ADJUST,
        {
            "input": {
                "sku": "MUG",
                "locationId": main,
                "delta": -3,
                "reason": "DAMAGED",
                "note": "dropped pallet",
                "expectedOnHand": 60,
            }
        },
        admin=True,
    )
    payload = damaged["data"]["adjustStock"]
    assert payload["userErrors"] == []
    assert (payload["stockLevel"]["onHand"], payload["stockLevel"]["reserved"]) == (57, 5)
    assert payload["stockLevel"]["version"] == 4  # receipt, adjust, reservation, adjust
    movement = payload["movement"]
    assert (movement["kind"], movement["reason"]) == ("ADJUSTMENT", "DAMAGED: dropped pallet")
    assert (movement["onHandDelta"], movement["reservedDelta"]) == (-3, 0)
    assert (movement["onHandAfter"], movement["reservedAfter"]) == (57, 5)

    # Every other reason is an ADJUSTMENT (CYCLE_COUNT a COUNT); no note: the reason alone.
    expected = {
        "CORRECTION": "ADJUSTMENT",
        "LOST": "ADJUSTMENT",
        "FOUND": "ADJUSTMENT",
        "CYCLE_COUNT": "COUNT",
    }
    for reason, kind in expected.items():
        body = await gql(
            ADJUST,
            {"input": {"sku": "SHIRT-M", "delta": 1, "reason": reason}},
            admin=True,
        )
        movement = body["data"]["adjustStock"]["movement"]
        assert (movement["kind"], movement["reason"]) == (kind, reason)

    # A location without a level for the SKU gets one.
    at_store = await gql(
        ADJUST,
        {"input": {"sku": "MUG", "locationId": store, "delta": 4, "reason": "RECEIVED"}},
        admin=True,
    )
    payload = at_store["data"]["adjustStock"]
    assert payload["stockLevel"]["location"] == {"id": store, "name": "Store"}
    assert (payload["stockLevel"]["onHand"], payload["stockLevel"]["version"]) == (4, 1)
    assert payload["movement"]["location"] == {"id": store, "name": "Store"}
    assert await variant_levels(gql, "MUG") == {"Main": (57, 5), "Store": (4, 0)}

    listed = await _movements(gql, first=1)
    assert listed["edges"][0]["node"] == payload["movement"]
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    ("input_", "expected"),
    [
        pytest.param({"delta": 0}, ("INVALID_INPUT", ["input", "delta"]), id="delta-zero"),
        pytest.param(
            {"delta": 1_000_001}, ("INVALID_INPUT", ["input", "delta"]), id="delta-too-big"
        ),
        pytest.param(
            {"delta": -1_000_001}, ("INVALID_INPUT", ["input", "delta"]), id="delta-too-small"
        ),
        pytest.param({"sku": "NOPE"}, ("UNKNOWN_SKU", ["input", "sku"]), id="unknown-sku"),
        pytest.param(
            {"locationId": "999999"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="unknown-location",
        ),
        pytest.param(
            {"locationId": "warehouse-7"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="non-numeric-location",
        ),
        pytest.param(
            {"locationId": "-1"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="negative-location",
        ),
        pytest.param(
            {"locationId": ""}, ("UNKNOWN_LOCATION", ["input", "locationId"]), id="empty-location"
        ),
        pytest.param(
            {"locationId": "99999999999999999999"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="location-out-of-range",
        ),
        pytest.param(
            {"locationId": "\u00b2"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="superscript-digit-location",
        ),
        pytest.param(
            {"locationId": "\u0661"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="non-ascii-digit-location",
        ),
        pytest.param(
            {"expectedOnHand": 49},
            ("STOCK_CHANGED", ["input", "expectedOnHand"]),
            id="stock-changed",
        ),
        pytest.param(
            {"delta": -6, "reason": "LOST"},
            ("INSUFFICIENT_STOCK", ["input", "delta"]),
            id="remove-reserved-units",
        ),
        pytest.param(
            {"delta": -51, "reason": "LOST"},
            ("INSUFFICIENT_STOCK", ["input", "delta"]),
            id="below-zero",
        ),
        pytest.param(
            {"idempotencyKey": "x" * 256},
            ("INVALID_INPUT", ["input", "idempotencyKey"]),
            id="key-too-long",
        ),
    ],
)
async def test_adjust_stock_refusals(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    input_: dict[str, Any],
    expected: tuple[str, list[str]],
) -> None:
    await reserve(gql, {"MUG": 45})
    before = await snapshot(sessions)
    body = await gql(
        ADJUST, {"input": {"sku": "MUG", "delta": 5, "reason": "RECEIVED", **input_}}, admin=True
    )
    assert "errors" not in body, body
    payload = body["data"]["adjustStock"]
    assert (payload["stockLevel"], payload["movement"]) == (None, None)
    assert errors_of(payload) == [expected]
    error = payload["userErrors"][0]
    if expected[0] in ("UNKNOWN_SKU", "INSUFFICIENT_STOCK"):
        assert error["sku"] == input_.get("sku", "MUG")
    if expected[0] == "INSUFFICIENT_STOCK":
        assert (error["requested"], error["available"]) == (-input_["delta"], 5)
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_adjust_stock_idempotency(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    input_ = {"sku": "MUG", "delta": 5, "reason": "RECEIVED", "idempotencyKey": "adj-1"}
    first = (await gql(ADJUST, {"input": input_}, admin=True))["data"]["adjustStock"]
    assert first["userErrors"] == []
    before = await snapshot(sessions)
    count = await ledger_count(sessions)

    again = (await gql(ADJUST, {"input": input_}, admin=True))["data"]["adjustStock"]
    assert again["userErrors"] == []
    assert again["movement"] == first["movement"]
    assert again["stockLevel"] == first["stockLevel"]
    assert await ledger_count(sessions) == count
    assert await snapshot(sessions) == before
    assert await variant_levels(gql, "MUG") == {"Main": (55, 0)}

    for changed in (
        {"delta": 6},
        {"reason": "FOUND"},
        {"note": "another note"},
        {"locationId": str(catalog.locations["Store"])},
        {"expectedOnHand": 55},
        {"sku": "SHIRT-M"},
    ):
        body = await gql(ADJUST, {"input": {**input_, **changed}}, admin=True)
        payload = body["data"]["adjustStock"]
        assert (payload["stockLevel"], payload["movement"]) == (None, None)
        assert errors_of(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


# ---------------------------------------------------------------- setStock


async def test_set_stock_writes_a_count(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    main = str(catalog.locations["Main"])
    counted = (await gql(SET, {"input": {"sku": "MUG", "onHand": 42}}, admin=True))["data"][
        "setStock"
    ]
    assert counted["userErrors"] == []
    assert counted["stockLevel"] == {
        "location": {"id": main, "name": "Main"},
        "onHand": 42,
        "reserved": 0,
        "available": 42,
        "version": 2,
    }
    movement = counted["movement"]
    assert {k: v for k, v in movement.items() if k not in ("id", "occurredAt")} == {
        "kind": "COUNT",
        "sku": "MUG",
        "location": {"id": main, "name": "Main"},
        "onHandDelta": -8,
        "reservedDelta": 0,
        "onHandAfter": 42,
        "reservedAfter": 0,
        "reason": "CYCLE_COUNT",
        "reference": None,
    }

    # The same figure again: no movement, no version bump.
    count = await ledger_count(sessions)
    unchanged = (
        await gql(SET, {"input": {"sku": "MUG", "onHand": 42, "expectedOnHand": 42}}, admin=True)
    )["data"]["setStock"]
    assert unchanged["userErrors"] == []
    assert unchanged["movement"] is None
    assert unchanged["stockLevel"] == counted["stockLevel"]
    assert await ledger_count(sessions) == count

    # Up, with reserved units kept; an explicit reason picks the movement kind.
    await reserve(gql, {"MUG": 40})
    found = (
        await gql(
            SET,
            {"input": {"sku": "MUG", "locationId": main, "onHand": 45, "reason": "FOUND"}},
            admin=True,
        )
    )["data"]["setStock"]
    assert found["userErrors"] == []
    assert (found["movement"]["kind"], found["movement"]["reason"]) == ("ADJUSTMENT", "FOUND")
    assert (found["movement"]["onHandDelta"], found["movement"]["reservedAfter"]) == (3, 40)
    assert (found["stockLevel"]["onHand"], found["stockLevel"]["available"]) == (45, 5)

    # Exactly the reserved figure is allowed.
    floor = (await gql(SET, {"input": {"sku": "MUG", "onHand": 40}}, admin=True))["data"][
        "setStock"
    ]
    assert floor["userErrors"] == []
    assert floor["stockLevel"]["available"] == 0

    store = str(catalog.locations["Store"])
    new_level = (
        await gql(SET, {"input": {"sku": "MUG", "locationId": store, "onHand": 7}}, admin=True)
    )["data"]["setStock"]
    assert (new_level["movement"]["kind"], new_level["movement"]["onHandDelta"]) == ("COUNT", 7)
    assert await variant_levels(gql, "MUG") == {"Main": (40, 40), "Store": (7, 0)}
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    ("input_", "expected"),
    [
        pytest.param({"onHand": -1}, ("INVALID_INPUT", ["input", "onHand"]), id="negative"),
        pytest.param({"onHand": 1_000_001}, ("INVALID_INPUT", ["input", "onHand"]), id="too-big"),
        pytest.param({"sku": "NOPE"}, ("UNKNOWN_SKU", ["input", "sku"]), id="unknown-sku"),
        pytest.param(
            {"locationId": "424242"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="unknown-location",
        ),
        pytest.param(
            {"locationId": "main"},
            ("UNKNOWN_LOCATION", ["input", "locationId"]),
            id="non-numeric-location",
        ),
        pytest.param(
            {"expectedOnHand": 51},
            ("STOCK_CHANGED", ["input", "expectedOnHand"]),
            id="stock-changed",
        ),
        pytest.param(
            {"onHand": 50, "expectedOnHand": 0},
            ("STOCK_CHANGED", ["input", "expectedOnHand"]),
            id="stock-changed-even-when-unchanged",
        ),
        pytest.param(
            {"onHand": 44}, ("INSUFFICIENT_STOCK", ["input", "onHand"]), id="below-reserved"
        ),
    ],
)
async def test_set_stock_refusals(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    input_: dict[str, Any],
    expected: tuple[str, list[str]],
) -> None:
    await reserve(gql, {"MUG": 45})
    before = await snapshot(sessions)
    body = await gql(SET, {"input": {"sku": "MUG", "onHand": 48, **input_}}, admin=True)
    assert "errors" not in body, body
    payload = body["data"]["setStock"]
    assert (payload["stockLevel"], payload["movement"]) == (None, None)
    assert errors_of(payload) == [expected]
    if expected[0] == "INSUFFICIENT_STOCK":
        error = payload["userErrors"][0]
        assert (error["sku"], error["requested"], error["available"]) == ("MUG", 6, 5)
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_set_stock_idempotency(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    input_ = {"sku": "MUG", "onHand": 30, "idempotencyKey": "count-1"}
    first = (await gql(SET, {"input": input_}, admin=True))["data"]["setStock"]
    assert first["userErrors"] == []
    assert first["movement"]["onHandDelta"] == -20
    # Stock moves on; replaying the count must not set it back to 30.
    await gql(ADJUST, {"input": {"sku": "MUG", "delta": 5, "reason": "RECEIVED"}}, admin=True)
    before = await snapshot(sessions)
    count = await ledger_count(sessions)

    again = (await gql(SET, {"input": input_}, admin=True))["data"]["setStock"]
    assert again["userErrors"] == []
    assert again["movement"] == first["movement"]
    assert await ledger_count(sessions) == count
    assert await snapshot(sessions) == before
    assert await variant_levels(gql, "MUG") == {"Main": (35, 0)}

    for changed in ({"onHand": 31}, {"reason": "FOUND"}, {"expectedOnHand": 35}):
        payload = (await gql(SET, {"input": {**input_, **changed}}, admin=True))["data"]["setStock"]
        assert errors_of(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


# ---------------------------------------------------------------- refundOrder


async def test_refund_partial_then_the_rest(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, _ = await paid_order(gql, sessions, {"SHIRT-S": 11, "MUG": 2})
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (0, 0), "Store": (1, 0)}

    partial = await gql(
        REFUND,
        {
            "input": {
                "orderId": order_id,
                "lines": [{"sku": "SHIRT-S", "quantity": 2}, {"sku": "SHIRT-S", "quantity": 1}],
                "reason": "too small",
            }
        },
        admin=True,
    )
    payload = partial["data"]["refundOrder"]
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "PARTIALLY_REFUNDED"
    assert _refund_lines(payload["order"]) == {"SHIRT-S": (11, 3), "MUG": (2, 0)}
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (3, 0), "Store": (1, 0)}

    rest = (await gql(REFUND, {"input": {"orderId": order_id}}, admin=True))["data"]["refundOrder"]
    assert rest["userErrors"] == []
    assert rest["order"]["status"] == "REFUNDED"
    assert _refund_lines(rest["order"]) == {"SHIRT-S": (11, 11), "MUG": (2, 2)}
    # Every unit went back where it was sold from.
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 0), "Store": (2, 0)}
    assert await variant_levels(gql, "MUG") == {"Main": (50, 0)}

    ledger = await _movements(gql, reference=f"order:{order_id}")
    returns = [
        (n["sku"], n["location"]["name"], n["onHandDelta"], n["reason"])
        for n in (e["node"] for e in ledger["edges"])
        if n["kind"] == "RETURN"
    ]
    assert returns == [  # newest first
        ("MUG", "Main", 2, None),
        ("SHIRT-S", "Store", 1, None),
        ("SHIRT-S", "Main", 7, None),
        ("SHIRT-S", "Main", 3, "too small"),
    ]

    before = await snapshot(sessions)
    again = (await gql(REFUND, {"input": {"orderId": order_id}}, admin=True))["data"]["refundOrder"]
    assert again["order"] is None
    assert errors_of(again) == [("INVALID_ORDER_STATE", ["input", "orderId"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_refund_without_restock_leaves_on_hand_alone(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, _ = await paid_order(gql, sessions, {"MUG": 2})
    count = await ledger_count(sessions)
    payload = (
        await gql(
            REFUND,
            {"input": {"orderId": order_id, "restock": False, "reason": "arrived broken"}},
            admin=True,
        )
    )["data"]["refundOrder"]
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "REFUNDED"
    assert _refund_lines(payload["order"]) == {"MUG": (2, 2)}
    assert await variant_levels(gql, "MUG") == {"Main": (48, 0)}
    assert await ledger_count(sessions) == count
    await assert_invariants(sessions)


async def test_refund_restocks_the_location_sold_from(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    # SHIRT-L has nothing at Main (the default location): it sells from Store.
    order_id, _ = await paid_order(gql, sessions, {"SHIRT-L": 3})
    assert await variant_levels(gql, "SHIRT-L") == {"Main": (0, 0), "Store": (17, 0)}
    payload = (
        await gql(
            REFUND,
            {"input": {"orderId": order_id, "lines": [{"sku": "SHIRT-L", "quantity": 2}]}},
            admin=True,
        )
    )["data"]["refundOrder"]
    assert payload["userErrors"] == []
    assert await variant_levels(gql, "SHIRT-L") == {"Main": (0, 0), "Store": (19, 0)}
    node = (await _movements(gql, first=1))["edges"][0]["node"]
    assert (node["kind"], node["location"]["name"], node["onHandDelta"]) == ("RETURN", "Store", 2)
    assert node["reference"] == f"order:{order_id}"
    await assert_invariants(sessions)


async def test_refund_refusals(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, _ = await paid_order(gql, sessions, {"SHIRT-S": 11, "MUG": 2})
    pending_id, _ = await pending_order(gql, {"MUG": 1})
    before = await snapshot(sessions)

    async def refund(input_: dict[str, Any]) -> dict[str, Any]:
        body = await gql(REFUND, {"input": input_}, admin=True)
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"]["refundOrder"]
        assert payload["order"] is None
        return payload

    exceeds = await refund({"orderId": order_id, "lines": [{"sku": "SHIRT-S", "quantity": 12}]})
    assert errors_of(exceeds) == [("REFUND_EXCEEDS_QUANTITY", ["input", "lines", "0", "quantity"])]
    error = exceeds["userErrors"][0]
    assert (error["sku"], error["requested"], error["available"]) == ("SHIRT-S", 12, 11)

    summed = await refund(
        {
            "orderId": order_id,
            "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}],
        }
    )
    assert errors_of(summed) == [("REFUND_EXCEEDS_QUANTITY", ["input", "lines", "1", "quantity"])]
    assert (summed["userErrors"][0]["requested"], summed["userErrors"][0]["available"]) == (3, 2)

    not_in_order = await refund({"orderId": order_id, "lines": [{"sku": "CAP", "quantity": 1}]})
    assert errors_of(not_in_order) == [
        ("REFUND_EXCEEDS_QUANTITY", ["input", "lines", "0", "quantity"])
    ]
    assert not_in_order["userErrors"][0]["available"] == 0

    zero = await refund(
        {
            "orderId": order_id,
            "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "SHIRT-S", "quantity": 0}],
        }
    )
    assert errors_of(zero) == [("INVALID_INPUT", ["input", "lines", "1", "quantity"])]
    negative = await refund({"orderId": order_id, "lines": [{"sku": "MUG", "quantity": -1}]})
    assert errors_of(negative) == [("INVALID_INPUT", ["input", "lines", "0", "quantity"])]
    empty = await refund({"orderId": order_id, "lines": []})
    assert errors_of(empty) == [("INVALID_INPUT", ["input", "lines"])]

    for missing in (str(uuid.uuid4()), "order-1"):
        not_found = await refund({"orderId": missing})
        assert errors_of(not_found) == [("ORDER_NOT_FOUND", ["input", "orderId"])]

    pending = await refund({"orderId": pending_id})
    assert errors_of(pending) == [("INVALID_ORDER_STATE", ["input", "orderId"])]
    assert "PENDING_PAYMENT" in pending["userErrors"][0]["message"]

    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_refund_idempotency(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, _ = await paid_order(gql, sessions, {"MUG": 3})
    input_ = {
        "orderId": order_id,
        "lines": [{"sku": "MUG", "quantity": 1}],
        "reason": "changed mind",
        "idempotencyKey": "refund-1",
    }
    first = (await gql(REFUND, {"input": input_}, admin=True))["data"]["refundOrder"]
    assert first["userErrors"] == []
    assert _refund_lines(first["order"]) == {"MUG": (3, 1)}
    before = await snapshot(sessions)
    count = await ledger_count(sessions)

    again = (await gql(REFUND, {"input": input_}, admin=True))["data"]["refundOrder"]
    assert again["userErrors"] == []
    assert again["order"] == first["order"]
    assert await ledger_count(sessions) == count
    assert await snapshot(sessions) == before

    other_id, _ = await paid_order(gql, sessions, {"MUG": 1})
    before = await snapshot(sessions)
    for changed in (
        {"lines": [{"sku": "MUG", "quantity": 2}]},
        {"lines": None},
        {"restock": False},
        {"reason": "other"},
        {"orderId": other_id},
    ):
        payload = (await gql(REFUND, {"input": {**input_, **changed}}, admin=True))["data"][
            "refundOrder"
        ]
        assert payload["order"] is None
        assert errors_of(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_payment_provider_error_on_refund_and_cancel_changes_nothing(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order_id, _ = await paid_order(gql, sessions, {"SHIRT-S": 2, "MUG": 1})
    pending_id, pending_rid = await pending_order(gql, {"MUG": 4})
    before = await snapshot(sessions)
    failing = FailingProvider()
    monkeypatch.setattr(app.state.services, "payments", failing)

    for query, name, input_ in (
        (REFUND, "refundOrder", {"orderId": order_id, "idempotencyKey": "rf-fail"}),
        (REFUND, "refundOrder", {"orderId": order_id, "lines": [{"sku": "MUG", "quantity": 1}]}),
        (CANCEL, "cancelOrder", {"orderId": order_id}),
        (CANCEL, "cancelOrder", {"orderId": pending_id}),
    ):
        payload = (await gql(query, {"input": input_}, admin=True))["data"][name]
        assert payload["order"] is None
        assert errors_of(payload) == [("PAYMENT_PROVIDER_ERROR", ["input", "orderId"])]
        assert "provider unavailable" in payload["userErrors"][0]["message"]
    assert failing.calls == ["refund", "refund", "refund", "cancel_payment"]
    assert await snapshot(sessions) == before
    reservation = (await gql(RESERVATION_QUERY, {"id": pending_rid}))["data"]["reservation"]
    assert reservation["status"] == "ACTIVE"

    monkeypatch.undo()
    # The failed call stored no idempotency record: the same key now succeeds.
    retried = (
        await gql(REFUND, {"input": {"orderId": order_id, "idempotencyKey": "rf-fail"}}, admin=True)
    )["data"]["refundOrder"]
    assert retried["userErrors"] == []
    assert retried["order"]["status"] == "REFUNDED"
    await assert_invariants(sessions)


# ---------------------------------------------------------------- cancelOrder


async def test_cancel_pending_order_releases_its_stock(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, rid = await pending_order(gql, {"SHIRT-S": 11, "MUG": 4})
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 10), "Store": (2, 1)}
    payload = (
        await gql(CANCEL, {"input": {"orderId": order_id, "reason": "buyer asked"}}, admin=True)
    )["data"]["cancelOrder"]
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["status"] == "CANCELLED"
    assert order["reservation"] == {"id": rid, "status": "RELEASED"}
    assert _refund_lines(order) == {"SHIRT-S": (11, 0), "MUG": (4, 0)}
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 0), "Store": (2, 0)}
    assert await variant_levels(gql, "MUG") == {"Main": (50, 0)}
    released = await _movements(gql, reference=f"reservation:{rid}", first=3)
    assert {e["node"]["kind"] for e in released["edges"]} == {"RELEASE"}

    before = await snapshot(sessions)
    again = (await gql(CANCEL, {"input": {"orderId": order_id}}, admin=True))["data"]["cancelOrder"]
    assert again["order"] is None
    assert errors_of(again) == [("INVALID_ORDER_STATE", ["input", "orderId"])]
    assert "CANCELLED" in again["userErrors"][0]["message"]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_cancel_paid_order_refunds_and_restocks(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, _ = await paid_order(gql, sessions, {"SHIRT-L": 3, "MUG": 2})
    # A partial refund first: cancelling refunds only what is left.
    await gql(
        REFUND,
        {"input": {"orderId": order_id, "lines": [{"sku": "MUG", "quantity": 1}]}},
        admin=True,
    )
    payload = (await gql(CANCEL, {"input": {"orderId": order_id}}, admin=True))["data"][
        "cancelOrder"
    ]
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "CANCELLED"
    assert _refund_lines(payload["order"]) == {"SHIRT-L": (3, 3), "MUG": (2, 2)}
    assert await variant_levels(gql, "SHIRT-L") == {"Main": (0, 0), "Store": (20, 0)}
    assert await variant_levels(gql, "MUG") == {"Main": (50, 0)}
    ledger = await _movements(gql, reference=f"order:{order_id}")
    assert sorted(
        (e["node"]["kind"], e["node"]["sku"], e["node"]["onHandDelta"]) for e in ledger["edges"]
    ) == [
        ("RETURN", "MUG", 1),
        ("RETURN", "MUG", 1),
        ("RETURN", "SHIRT-L", 3),
        ("SALE", "MUG", -2),
        ("SALE", "SHIRT-L", -3),
    ]

    before = await snapshot(sessions)
    again = (await gql(CANCEL, {"input": {"orderId": order_id}}, admin=True))["data"]["cancelOrder"]
    assert errors_of(again) == [("INVALID_ORDER_STATE", ["input", "orderId"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_cancel_flagged_order_releases_its_reservation(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, rid = await pending_order(gql, {"MUG": 3})
    async with sessions.begin() as session:
        outcome = await payment_outcomes.payment_succeeded(
            UnitOfWork(session, actor="system"), uuid.UUID(order_id), amount=1, currency="USD"
        )
    assert outcome == "amount_mismatch"
    assert await variant_levels(gql, "MUG") == {"Main": (50, 3)}
    payload = (await gql(CANCEL, {"input": {"orderId": order_id}}, admin=True))["data"][
        "cancelOrder"
    ]
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "CANCELLED"
    assert payload["order"]["reservation"] == {"id": rid, "status": "RELEASED"}
    # Nothing was sold, so nothing is restocked; the held units are free again.
    assert await variant_levels(gql, "MUG") == {"Main": (50, 0)}
    await assert_invariants(sessions)


async def test_cancel_refusals(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    refunded_id, _ = await paid_order(gql, sessions, {"MUG": 1})
    await gql(REFUND, {"input": {"orderId": refunded_id}}, admin=True)
    before = await snapshot(sessions)
    for order_id, code in (
        (str(uuid.uuid4()), "ORDER_NOT_FOUND"),
        ("not-an-order", "ORDER_NOT_FOUND"),
        (refunded_id, "INVALID_ORDER_STATE"),
    ):
        payload = (await gql(CANCEL, {"input": {"orderId": order_id}}, admin=True))["data"][
            "cancelOrder"
        ]
        assert payload["order"] is None
        assert errors_of(payload) == [(code, ["input", "orderId"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


# ---------------------------------------------------------------- stockMovements


async def test_stock_movements_pages_newest_first(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, rid = await paid_order(gql, sessions, {"MUG": 2, "SHIRT-S": 11})
    await gql(
        REFUND,
        {"input": {"orderId": order_id, "lines": [{"sku": "MUG", "quantity": 1}], "reason": "r"}},
        admin=True,
    )
    total = await ledger_count(sessions)
    assert total == 5 + 3 + 3 + 1  # receipts, reservations, sales, return

    ids: list[int] = []
    after: str | None = None
    pages = 0
    while True:
        page = await _movements(gql, first=5, after=after)
        pages += 1
        info = page["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        ids.extend(int(e["node"]["id"]) for e in page["edges"])
        if not info["hasNextPage"]:
            break
        assert len(page["edges"]) == 5
        after = info["endCursor"]
    assert pages == 3
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(set(ids)) == total

    exact = await _movements(gql, first=total)
    assert exact["pageInfo"]["hasNextPage"] is False
    assert len(exact["edges"]) == total
    empty = await _movements(gql, first=0)
    assert empty["edges"] == []
    assert empty["pageInfo"]["endCursor"] is None

    mug = await _movements(gql, sku="MUG")
    nodes = [e["node"] for e in mug["edges"]]
    main = {"id": str(catalog.locations["Main"]), "name": "Main"}
    assert [
        (
            n["kind"],
            n["sku"],
            n["location"],
            n["onHandDelta"],
            n["reservedDelta"],
            n["onHandAfter"],
            n["reservedAfter"],
            n["reference"],
        )
        for n in nodes
    ] == [
        ("RETURN", "MUG", main, 1, 0, 49, 0, f"order:{order_id}"),
        ("SALE", "MUG", main, -2, -2, 48, 0, f"order:{order_id}"),
        ("RESERVATION", "MUG", main, 0, 2, 50, 2, f"reservation:{rid}"),
        ("RECEIPT", "MUG", main, 50, 0, 50, 0, None),
    ]
    assert nodes[0]["reason"] == "r"
    assert all(n["occurredAt"] for n in nodes)

    # Filters combine with pagination.
    first_page = await _movements(gql, sku="SHIRT-S", first=2)
    assert first_page["pageInfo"]["hasNextPage"] is True
    second_page = await _movements(
        gql, sku="SHIRT-S", first=10, after=first_page["pageInfo"]["endCursor"]
    )
    assert second_page["pageInfo"]["hasNextPage"] is False
    shirt = [e["node"] for e in first_page["edges"] + second_page["edges"]]
    assert [(n["kind"], n["location"]["name"]) for n in shirt] == [
        ("SALE", "Store"),
        ("SALE", "Main"),
        ("RESERVATION", "Store"),
        ("RESERVATION", "Main"),
        ("RECEIPT", "Store"),
        ("RECEIPT", "Main"),
    ]

    by_order = await _movements(gql, reference=f"order:{order_id}")
    # A sale writes its levels in level-id order (SHIRT-S's levels were created first).
    assert [(e["node"]["kind"], e["node"]["sku"]) for e in by_order["edges"]] == [
        ("RETURN", "MUG"),
        ("SALE", "MUG"),
        ("SALE", "SHIRT-S"),
        ("SALE", "SHIRT-S"),
    ]
    assert {e["node"]["reference"] for e in by_order["edges"]} == {f"order:{order_id}"}
    both = await _movements(gql, reference=f"order:{order_id}", sku="MUG")
    assert [e["node"]["kind"] for e in both["edges"]] == ["RETURN", "SALE"]
    assert (await _movements(gql, sku="NOPE"))["edges"] == []
    assert (await _movements(gql, reference="order:nothing"))["edges"] == []
    await assert_invariants(sessions)


async def test_stock_movements_bad_arguments(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    for args, code in (
        ({"first": 251}, "BAD_USER_INPUT"),
        ({"first": -1}, "BAD_USER_INPUT"),
        ({"after": "not-a-cursor"}, "BAD_CURSOR"),
        ({"after": encode_cursor("product", 3)}, "BAD_CURSOR"),
    ):
        body = await gql(MOVEMENTS, args, admin=True)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], args
    await assert_invariants(sessions)
