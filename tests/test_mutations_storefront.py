"""Storefront mutations through GraphQL: reserveStock, updateReservation, releaseReservation,
checkout, and the reservation / order queries. Every refusal is a `userError` with its
input path, and changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.orders import payment_outcomes
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import (
    CHECKOUT,
    ORDER_QUERY,
    RELEASE,
    RESERVATION_QUERY,
    RESERVE,
    UPDATE,
    FailingProvider,
    checkout,
    errors_of,
    ledger_count,
    paid_order,
    pending_order,
    reserve,
    scalar,
    snapshot,
    variant_levels,
)
from tests.support.invariants import assert_invariants


def _lines(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"sku": s, "quantity": q} for s, q in pairs]


async def _expire(sessions: async_sessionmaker[AsyncSession], reservation_id: str) -> None:
    """Move a reservation's expiry into the past (the sweeper has not run yet)."""
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE reservations SET expires_at = now() - interval '1 minute' WHERE id = :id"),
            {"id": uuid.UUID(reservation_id)},
        )


# ---------------------------------------------------------------- reserveStock: refusals


@pytest.mark.parametrize(
    ("input_", "expected"),
    [
        pytest.param(
            {"lines": _lines(("MUG", 0))},
            [("INVALID_INPUT", ["input", "lines", "0", "quantity"])],
            id="quantity-zero",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1), ("SHIRT-S", -2))},
            [("INVALID_INPUT", ["input", "lines", "1", "quantity"])],
            id="quantity-negative",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 10_001))},
            [("INVALID_INPUT", ["input", "lines", "0", "quantity"])],
            id="quantity-above-max",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 6_000), ("MUG", 5_000))},
            [("INVALID_INPUT", ["input", "lines", "1", "quantity"])],
            id="merged-quantity-above-max",
        ),
        pytest.param(
            {"lines": _lines(*[("MUG", 1)] * 101)},
            [("INVALID_INPUT", ["input", "lines"])],
            id="too-many-lines",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1), ("   ", 1))},
            [("INVALID_INPUT", ["input", "lines", "1", "sku"])],
            id="blank-sku",
        ),
        pytest.param(
            {"lines": _lines(("", 1), ("MUG", 0))},
            [
                ("INVALID_INPUT", ["input", "lines", "0", "sku"]),
                ("INVALID_INPUT", ["input", "lines", "1", "quantity"]),
            ],
            id="every-bad-line-reported",
        ),
        pytest.param(
            {"lines": []},
            [("INVALID_INPUT", ["input", "lines"])],
            id="empty-lines",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1)), "ttlSeconds": 0},
            [("INVALID_INPUT", ["input", "ttlSeconds"])],
            id="ttl-zero",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1)), "ttlSeconds": 7201},
            [("INVALID_INPUT", ["input", "ttlSeconds"])],
            id="ttl-above-max",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1)), "idempotencyKey": ""},
            [("INVALID_INPUT", ["input", "idempotencyKey"])],
            id="empty-idempotency-key",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1), ("NOPE", 1))},
            [("UNKNOWN_SKU", ["input", "lines", "1", "sku"])],
            id="unknown-sku",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1), ("MUG", 1), ("NOPE", 1))},
            [("UNKNOWN_SKU", ["input", "lines", "2", "sku"])],
            id="unknown-sku-after-repeated-sku",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1), ("CAP", 1))},
            [("INSUFFICIENT_STOCK", ["input", "lines", "1", "quantity"])],
            id="out-of-stock",
        ),
        pytest.param(
            {"lines": _lines(("MUG", 1), ("MUG", 1), ("SHIRT-M", 4))},
            [("INSUFFICIENT_STOCK", ["input", "lines", "2", "quantity"])],
            id="short-after-repeated-sku",
        ),
    ],
)
async def test_reserve_refusals_change_nothing(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    input_: dict[str, Any],
    expected: list[tuple[str, list[str]]],
) -> None:
    before = await snapshot(sessions)
    body = await gql(RESERVE, {"input": input_})
    assert "errors" not in body
    payload = body["data"]["reserveStock"]
    assert payload["reservation"] is None
    assert errors_of(payload) == expected
    assert all(e["message"] for e in payload["userErrors"])
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_reserve_unknown_sku_and_shortage_details(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    unknown = await gql(RESERVE, {"input": {"lines": _lines(("NOPE", 1))}})
    error = unknown["data"]["reserveStock"]["userErrors"][0]
    assert (error["code"], error["sku"]) == ("UNKNOWN_SKU", "NOPE")

    # SHIRT-S: 10 at Main + 2 at Store; asking 13 counts both locations as available.
    short = await gql(RESERVE, {"input": {"lines": _lines(("SHIRT-S", 13))}})
    error = short["data"]["reserveStock"]["userErrors"][0]
    assert {k: error[k] for k in ("code", "field", "sku", "requested", "available")} == {
        "code": "INSUFFICIENT_STOCK",
        "field": ["input", "lines", "0", "quantity"],
        "sku": "SHIRT-S",
        "requested": 13,
        "available": 12,
    }
    # Repeated lines of one SKU are merged before the stock check.
    merged = await gql(RESERVE, {"input": {"lines": _lines(("SHIRT-M", 2), ("SHIRT-M", 2))}})
    error = merged["data"]["reserveStock"]["userErrors"][0]
    assert (error["code"], error["requested"], error["available"]) == ("INSUFFICIENT_STOCK", 4, 3)
    assert await ledger_count(sessions) == 5  # the catalog's receipts only
    await assert_invariants(sessions)


# ---------------------------------------------------------------- reserveStock: success


async def test_reserve_splits_across_locations_with_max_ttl(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    started = datetime.now().astimezone()
    reservation = await reserve(gql, {"SHIRT-S": 11, "MUG": 2}, ttlSeconds=7200)
    assert reservation["status"] == "ACTIVE"
    assert reservation["lines"] == [
        {"variant": {"sku": "SHIRT-S"}, "quantity": 11},
        {"variant": {"sku": "MUG"}, "quantity": 2},
    ]
    expires = datetime.fromisoformat(reservation["expiresAt"])
    assert timedelta(seconds=7190) < expires - started < timedelta(seconds=7210)
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 10), "Store": (2, 1)}
    assert await variant_levels(gql, "MUG") == {"Main": (50, 2)}
    await assert_invariants(sessions)


async def test_reserve_idempotency(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    key = "cart-7f3a-0b51-4e8e-9d2c"
    first = await reserve(gql, {"MUG": 2, "SHIRT-M": 1}, idempotencyKey=key)
    before = await snapshot(sessions)

    again = await reserve(gql, {"MUG": 2, "SHIRT-M": 1}, idempotencyKey=key)
    assert again["id"] == first["id"]
    assert again["lines"] == first["lines"]
    # The same lines in another order are the same cart.
    reordered = await reserve(gql, {"SHIRT-M": 1, "MUG": 2}, idempotencyKey=key)
    assert reordered["id"] == first["id"]
    assert await snapshot(sessions) == before
    assert await variant_levels(gql, "MUG") == {"Main": (50, 2)}

    for changed in (
        {"lines": _lines(("MUG", 3), ("SHIRT-M", 1))},
        {"lines": _lines(("MUG", 2))},
        {"lines": _lines(("MUG", 2), ("SHIRT-M", 1)), "ttlSeconds": 60},
    ):
        body = await gql(RESERVE, {"input": {**changed, "idempotencyKey": key}})
        payload = body["data"]["reserveStock"]
        assert payload["reservation"] is None
        assert errors_of(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await snapshot(sessions) == before

    # A refused first call stores nothing: the key is still free afterwards.
    key2 = "k2-5e0d7c1a-93b4-4f11"
    refused = await gql(RESERVE, {"input": {"lines": _lines(("CAP", 1)), "idempotencyKey": key2}})
    assert errors_of(refused["data"]["reserveStock"])[0][0] == "INSUFFICIENT_STOCK"
    other = await reserve(gql, {"MUG": 1}, idempotencyKey=key2)
    assert other["id"] != first["id"]
    await assert_invariants(sessions)


# ---------------------------------------------------------------- updateReservation


async def _update(gql: GraphQLCaller, rid: str, *pairs: tuple[str, int]) -> dict[str, Any]:
    body = await gql(UPDATE, {"input": {"reservationId": rid, "lines": _lines(*pairs)}})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["updateReservation"]
    return payload


async def test_update_reservation_increase_decrease_remove_add(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    rid = (await reserve(gql, {"MUG": 2, "SHIRT-M": 1}))["id"]

    increased = await _update(gql, rid, ("MUG", 5))
    assert increased["userErrors"] == []
    assert increased["reservation"]["lines"] == [
        {"variant": {"sku": "MUG"}, "quantity": 5},
        {"variant": {"sku": "SHIRT-M"}, "quantity": 1},
    ]
    assert await variant_levels(gql, "MUG") == {"Main": (50, 5)}

    decreased = await _update(gql, rid, ("MUG", 1))
    assert decreased["userErrors"] == []
    assert await variant_levels(gql, "MUG") == {"Main": (50, 1)}

    removed_added = await _update(gql, rid, ("SHIRT-M", 0), ("SHIRT-L", 4))
    assert removed_added["userErrors"] == []
    assert removed_added["reservation"]["status"] == "ACTIVE"
    assert sorted(
        (ln["variant"]["sku"], ln["quantity"]) for ln in removed_added["reservation"]["lines"]
    ) == [("MUG", 1), ("SHIRT-L", 4)]
    assert await variant_levels(gql, "SHIRT-M") == {"Main": (3, 0)}
    # SHIRT-L has nothing at Main (priority 10), so it comes from Store.
    assert await variant_levels(gql, "SHIRT-L") == {"Main": (0, 0), "Store": (20, 4)}

    # Quantities are absolute: sending the current figure changes nothing.
    count = await ledger_count(sessions)
    same = await _update(gql, rid, ("MUG", 1))
    assert same["userErrors"] == []
    assert await ledger_count(sessions) == count

    seen = await gql(RESERVATION_QUERY, {"id": rid})
    assert seen["data"]["reservation"]["lines"] == removed_added["reservation"]["lines"]
    await assert_invariants(sessions)


async def test_update_reservation_splits_across_locations(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    rid = (await reserve(gql, {"SHIRT-S": 9}))["id"]
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 9), "Store": (2, 0)}

    grown = await _update(gql, rid, ("SHIRT-S", 12))
    assert grown["userErrors"] == []
    assert grown["reservation"]["lines"] == [{"variant": {"sku": "SHIRT-S"}, "quantity": 12}]
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 10), "Store": (2, 2)}

    # Decreases give back the lowest-priority location first.
    shrunk = await _update(gql, rid, ("SHIRT-S", 9))
    assert shrunk["userErrors"] == []
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 9), "Store": (2, 0)}

    too_many = await _update(gql, rid, ("SHIRT-S", 13))
    assert too_many["reservation"] is None
    error = too_many["userErrors"][0]
    assert {k: error[k] for k in ("code", "field", "sku", "requested", "available")} == {
        "code": "INSUFFICIENT_STOCK",
        "field": ["input", "lines", "0", "quantity"],
        "sku": "SHIRT-S",
        "requested": 13,
        "available": 12,
    }
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 9), "Store": (2, 0)}

    movements = await scalar(
        sessions,
        "SELECT string_agg(m.kind || ':' || l.name || ':' || m.reserved_delta, ',' ORDER BY m.id)"
        " FROM stock_movements m JOIN locations l ON l.id = m.location_id WHERE reference = :ref",
        ref=f"reservation:{rid}",
    )
    assert movements.split(",") == [
        "RESERVATION:Main:9",
        "RESERVATION:Main:1",
        "RESERVATION:Store:2",
        "RELEASE:Main:-1",
        "RELEASE:Store:-2",
    ]
    await assert_invariants(sessions)


async def test_update_reservation_extends_expiry(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    reservation = await reserve(gql, {"MUG": 1}, ttlSeconds=600)
    rid = reservation["id"]
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE reservations SET expires_at = now() + interval '5 s' WHERE id = :id"),
            {"id": uuid.UUID(rid)},
        )
    updated = await _update(gql, rid, ("MUG", 2))
    assert updated["userErrors"] == []
    remaining = datetime.fromisoformat(updated["reservation"]["expiresAt"]) - datetime.now(
        datetime.fromisoformat(updated["reservation"]["expiresAt"]).tzinfo
    )
    # The expiry moves to now + the reservation's own TTL (600 s), not the default.
    assert timedelta(seconds=590) < remaining <= timedelta(seconds=600)
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            _lines(("MUG", -1)),
            [("INVALID_INPUT", ["input", "lines", "0", "quantity"])],
            id="negative",
        ),
        pytest.param(
            _lines(("MUG", 10_001)),
            [("INVALID_INPUT", ["input", "lines", "0", "quantity"])],
            id="above-max",
        ),
        pytest.param([], [("INVALID_INPUT", ["input", "lines"])], id="empty-lines"),
        pytest.param(
            _lines(*[("MUG", 1)] * 101), [("INVALID_INPUT", ["input", "lines"])], id="too-many"
        ),
        pytest.param(
            _lines(("MUG", 1), (" ", 1)),
            [("INVALID_INPUT", ["input", "lines", "1", "sku"])],
            id="blank-sku",
        ),
        pytest.param(
            _lines(("MUG", 1), ("MUG", 2)),
            [("INVALID_INPUT", ["input", "lines", "1", "sku"])],
            id="repeated-sku",
        ),
        pytest.param(
            _lines(("MUG", 1), ("NOPE", 1)),
            [("UNKNOWN_SKU", ["input", "lines", "1", "sku"])],
            id="unknown-sku",
        ),
        pytest.param(
            _lines(("MUG", 3), ("CAP", 1)),
            [("INSUFFICIENT_STOCK", ["input", "lines", "1", "quantity"])],
            id="out-of-stock",
        ),
    ],
)
async def test_update_reservation_refusals(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    lines: list[dict[str, Any]],
    expected: list[tuple[str, list[str]]],
) -> None:
    rid = (await reserve(gql, {"MUG": 2}))["id"]
    before = await snapshot(sessions)
    payload = (await gql(UPDATE, {"input": {"reservationId": rid, "lines": lines}}))["data"][
        "updateReservation"
    ]
    assert payload["reservation"] is None
    assert errors_of(payload) == expected
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_update_reservation_not_found_or_not_active(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    field = ["input", "reservationId"]
    for rid in (str(uuid.uuid4()), "not-a-uuid", ""):
        payload = await _update(gql, rid, ("MUG", 1))
        assert payload["reservation"] is None
        assert errors_of(payload) == [("RESERVATION_NOT_FOUND", field)]

    released = (await reserve(gql, {"MUG": 1}))["id"]
    assert (await gql(RELEASE, {"id": released}))["data"]["releaseReservation"]["userErrors"] == []
    expired = (await reserve(gql, {"MUG": 1}))["id"]
    await _expire(sessions, expired)
    before = await snapshot(sessions)
    for rid, status in ((released, "RELEASED"), (expired, "EXPIRED")):
        payload = await _update(gql, rid, ("MUG", 3))
        assert payload["reservation"] is None
        assert errors_of(payload) == [("RESERVATION_NOT_ACTIVE", field)]
        assert status in payload["userErrors"][0]["message"]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_update_reservation_after_checkout_is_refused(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    # The order's lines and payment amount are frozen at checkout: growing the cart now
    # would sell units nobody paid for (and a new SKU has no order line to sell against).
    order_id, rid = await pending_order(gql, {"MUG": 1})
    before = await snapshot(sessions)
    for pairs in ((("MUG", 10),), (("MUG", 1), ("SHIRT-M", 1)), (("MUG", 0),)):
        payload = await _update(gql, rid, *pairs)
        assert payload["reservation"] is None
        assert errors_of(payload) == [("INVALID_ORDER_STATE", ["input", "reservationId"])]
        assert "PENDING_PAYMENT" in payload["userErrors"][0]["message"]
    assert await snapshot(sessions) == before

    async with sessions.begin() as session:
        assert (
            await payment_outcomes.payment_succeeded(
                UnitOfWork(session, actor="system"), uuid.UUID(order_id)
            )
            == "sold"
        )
    assert await variant_levels(gql, "MUG") == {"Main": (49, 0)}
    order = (await gql(ORDER_QUERY, {"id": order_id}, admin=True))["data"]["order"]
    assert order["status"] == "PAID"
    await assert_invariants(sessions)


# ---------------------------------------------------------------- releaseReservation


async def test_release_reservation(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    rid = (await reserve(gql, {"SHIRT-S": 11, "MUG": 3}))["id"]
    body = await gql(RELEASE, {"id": rid})
    payload = body["data"]["releaseReservation"]
    assert payload["userErrors"] == []
    assert payload["reservation"]["id"] == rid
    assert payload["reservation"]["status"] == "RELEASED"
    assert await variant_levels(gql, "SHIRT-S") == {"Main": (10, 0), "Store": (2, 0)}
    assert await variant_levels(gql, "MUG") == {"Main": (50, 0)}
    kinds = await scalar(
        sessions,
        "SELECT string_agg(kind || ':' || reserved_delta, ',' ORDER BY id) FROM stock_movements "
        "WHERE reference = :ref AND kind = 'RELEASE'",
        ref=f"reservation:{rid}",
    )
    assert sorted(kinds.split(",")) == ["RELEASE:-1", "RELEASE:-10", "RELEASE:-3"]

    before = await snapshot(sessions)
    again = (await gql(RELEASE, {"id": rid}))["data"]["releaseReservation"]
    assert again["reservation"] is None
    assert errors_of(again) == [("RESERVATION_NOT_ACTIVE", ["reservationId"])]
    for bad in (str(uuid.uuid4()), "12345"):
        missing = (await gql(RELEASE, {"id": bad}))["data"]["releaseReservation"]
        assert errors_of(missing) == [("RESERVATION_NOT_FOUND", ["reservationId"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_release_cancels_the_pending_order(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, rid = await pending_order(gql, {"MUG": 2})
    payload = (await gql(RELEASE, {"id": rid}))["data"]["releaseReservation"]
    assert payload["userErrors"] == []
    order = (await gql(ORDER_QUERY, {"id": order_id}, admin=True))["data"]["order"]
    assert order["status"] == "CANCELLED"
    assert order["reservation"]["status"] == "RELEASED"
    assert await variant_levels(gql, "MUG") == {"Main": (50, 0)}
    # A released reservation cannot be checked out again.
    again = (await gql(CHECKOUT, {"input": {"reservationId": rid}}))["data"]["checkout"]
    assert errors_of(again) == [("RESERVATION_NOT_ACTIVE", ["input", "reservationId"])]
    await assert_invariants(sessions)


# ---------------------------------------------------------------- checkout


async def test_checkout_twice_returns_the_same_order(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    rid = (await reserve(gql, {"SHIRT-L": 2, "MUG": 1}))["id"]
    first = await gql(CHECKOUT, {"input": {"reservationId": rid, "email": "a@example.com"}})
    payload = first["data"]["checkout"]
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["status"] == "PENDING_PAYMENT"
    assert order["total"] == {"amount": "61.99", "currencyCode": "USD"}
    assert order["reservation"] == {"id": rid, "status": "ACTIVE"}
    lines = [
        (ln["variant"]["sku"], ln["quantity"], ln["refundedQuantity"]) for ln in order["lines"]
    ]
    assert sorted(lines) == [
        ("MUG", 1, 0),
        ("SHIRT-L", 2, 0),
    ]
    assert payload["paymentClientSecret"].startswith(order["paymentIntentId"])
    before = await snapshot(sessions)

    second = (await gql(CHECKOUT, {"input": {"reservationId": rid}}))["data"]["checkout"]
    assert second["userErrors"] == []
    assert second["order"]["id"] == order["id"]
    assert second["order"]["paymentIntentId"] == order["paymentIntentId"]
    assert second["paymentClientSecret"] == payload["paymentClientSecret"]
    assert await snapshot(sessions) == before
    # The stock stays reserved until the payment outcome.
    assert await variant_levels(gql, "SHIRT-L") == {"Main": (0, 0), "Store": (20, 2)}
    await assert_invariants(sessions)


async def test_checkout_refusals(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    field = ["input", "reservationId"]
    for rid in (str(uuid.uuid4()), "nope"):
        payload = (await gql(CHECKOUT, {"input": {"reservationId": rid}}))["data"]["checkout"]
        assert payload["order"] is None
        assert payload["paymentClientSecret"] is None
        assert errors_of(payload) == [("RESERVATION_NOT_FOUND", field)]

    released = (await reserve(gql, {"MUG": 1}))["id"]
    await gql(RELEASE, {"id": released})
    expired = (await reserve(gql, {"MUG": 1}))["id"]
    await _expire(sessions, expired)
    _, sold = await paid_order(gql, sessions, {"MUG": 1})
    before = await snapshot(sessions)
    for rid, status in ((released, "RELEASED"), (expired, "EXPIRED"), (sold, "COMPLETED")):
        payload = (await gql(CHECKOUT, {"input": {"reservationId": rid}}))["data"]["checkout"]
        assert payload["order"] is None
        assert errors_of(payload) == [("RESERVATION_NOT_ACTIVE", field)]
        assert status in payload["userErrors"][0]["message"]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_checkout_of_expired_pending_order_is_refused(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    _, rid = await pending_order(gql, {"MUG": 1})
    await _expire(sessions, rid)
    payload = (await gql(CHECKOUT, {"input": {"reservationId": rid}}))["data"]["checkout"]
    assert payload["order"] is None
    assert errors_of(payload) == [("RESERVATION_NOT_ACTIVE", ["input", "reservationId"])]
    await assert_invariants(sessions)


async def test_checkout_of_a_flagged_order_is_refused(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    # A payment for the wrong amount flags the order; its reservation stays ACTIVE.
    order_id, rid = await pending_order(gql, {"MUG": 1})
    async with sessions.begin() as session:
        outcome = await payment_outcomes.payment_succeeded(
            UnitOfWork(session, actor="system"), uuid.UUID(order_id), amount=1, currency="USD"
        )
    assert outcome == "amount_mismatch"
    before = await snapshot(sessions)
    payload = (await gql(CHECKOUT, {"input": {"reservationId": rid}}))["data"]["checkout"]
    assert payload["order"] is None
    assert errors_of(payload) == [("INVALID_ORDER_STATE", ["input", "reservationId"])]
    assert "NEEDS_ATTENTION" in payload["userErrors"][0]["message"]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_checkout_idempotency(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    rid = (await reserve(gql, {"MUG": 2}))["id"]
    input_ = {"reservationId": rid, "email": "a@b.c", "idempotencyKey": "checkout-1-6f0e2b8d-41a7"}
    first = (await gql(CHECKOUT, {"input": input_}))["data"]["checkout"]
    assert first["userErrors"] == []
    before = await snapshot(sessions)
    count = await ledger_count(sessions)

    again = (await gql(CHECKOUT, {"input": input_}))["data"]["checkout"]
    assert again["userErrors"] == []
    assert again["order"]["id"] == first["order"]["id"]
    assert again["paymentClientSecret"] == first["paymentClientSecret"]
    assert await snapshot(sessions) == before
    assert await ledger_count(sessions) == count

    other_rid = (await reserve(gql, {"MUG": 1}))["id"]
    before = await snapshot(sessions)
    for changed in (
        {"reservationId": rid, "email": "other@b.c"},
        {"reservationId": rid},
        {"reservationId": other_rid, "email": "a@b.c"},
    ):
        body = await gql(
            CHECKOUT, {"input": {**changed, "idempotencyKey": "checkout-1-6f0e2b8d-41a7"}}
        )
        payload = body["data"]["checkout"]
        assert payload["order"] is None
        assert errors_of(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_checkout_payment_provider_error_changes_nothing(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = (await reserve(gql, {"MUG": 2}))["id"]
    before = await snapshot(sessions)
    failing = FailingProvider()
    monkeypatch.setattr(app.state.services, "payments", failing)

    key = "co-fail-3c9d51e7-a0b2"
    body = await gql(CHECKOUT, {"input": {"reservationId": rid, "idempotencyKey": key}})
    payload = body["data"]["checkout"]
    assert payload["order"] is None
    assert payload["paymentClientSecret"] is None
    assert errors_of(payload) == [("PAYMENT_PROVIDER_ERROR", ["input", "reservationId"])]
    assert "provider unavailable" in payload["userErrors"][0]["message"]
    assert failing.calls == ["create_payment"]
    # No order, no idempotency record, the reservation still ACTIVE and its stock held.
    assert await snapshot(sessions) == before
    reservation = (await gql(RESERVATION_QUERY, {"id": rid}))["data"]["reservation"]
    assert reservation["status"] == "ACTIVE"

    monkeypatch.undo()
    # Once the provider is back, the same checkout (same key) goes through.
    order = await checkout(gql, rid, idempotencyKey=key)
    assert order["status"] == "PENDING_PAYMENT"
    await assert_invariants(sessions)


async def test_release_cancels_the_payment_after_commit_even_when_the_provider_fails(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider is called after the commit (no stock lock held during it); its failure
    neither undoes the release nor hides: the order records `payment_intent.cancel_failed`."""
    rid = (await reserve(gql, {"MUG": 2}))["id"]
    order = await checkout(gql, rid)
    failing = FailingProvider()
    monkeypatch.setattr(app.state.services, "payments", failing)

    payload = (await gql(RELEASE, {"id": rid}))["data"]["releaseReservation"]
    assert payload["userErrors"] == []
    assert payload["reservation"]["status"] == "RELEASED"
    assert failing.calls == ["cancel_payment"]
    monkeypatch.undo()

    async with sessions.begin() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT o.status, array_agg(e.type ORDER BY e.id) AS types FROM orders o "
                    "JOIN payment_events e ON e.order_id = o.id WHERE o.id = :id GROUP BY o.status"
                ),
                {"id": uuid.UUID(order["id"])},
            )
        ).one()
    assert rows.status == "CANCELLED"
    assert rows.types[-2:] == ["order.cancelled", "payment_intent.cancel_failed"]
    mug = (await gql('{ variant(sku: "MUG") { reserved available } }'))["data"]["variant"]
    assert mug == {"reserved": 0, "available": 50}
    await assert_invariants(sessions)


# ---------------------------------------------------------------- order and reservation queries


async def test_order_query_access(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    order_id, rid = await pending_order(gql, {"MUG": 1})
    other_rid = (await reserve(gql, {"MUG": 1}))["id"]

    as_admin = await gql(ORDER_QUERY, {"id": order_id}, admin=True)
    assert "errors" not in as_admin
    assert as_admin["data"]["order"]["id"] == order_id
    assert as_admin["data"]["order"]["reservation"]["id"] == rid

    as_buyer = await gql(ORDER_QUERY, {"id": order_id, "rid": rid})
    assert "errors" not in as_buyer
    assert as_buyer["data"]["order"] == as_admin["data"]["order"]

    for rid_arg in (None, other_rid, "not-a-uuid", str(uuid.uuid4())):
        denied = await gql(ORDER_QUERY, {"id": order_id, "rid": rid_arg})
        assert denied["data"]["order"] is None
        assert [e["extensions"]["code"] for e in denied["errors"]] == ["FORBIDDEN"]
        assert denied["errors"][0]["path"] == ["order"]

    # An unknown order looks the same as someone else's to a non-admin.
    unknown = await gql(ORDER_QUERY, {"id": str(uuid.uuid4()), "rid": rid})
    assert [e["extensions"]["code"] for e in unknown["errors"]] == ["FORBIDDEN"]
    assert (await gql(ORDER_QUERY, {"id": str(uuid.uuid4())}, admin=True))["data"]["order"] is None
    await assert_invariants(sessions)


async def test_reservation_query(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    reservation = await reserve(gql, {"MUG": 1, "SHIRT-S": 11})
    seen = (await gql(RESERVATION_QUERY, {"id": reservation["id"]}))["data"]["reservation"]
    assert seen == reservation
    for missing in (str(uuid.uuid4()), "garbage"):
        body = await gql(RESERVATION_QUERY, {"id": missing})
        assert "errors" not in body
        assert body["data"]["reservation"] is None
    await assert_invariants(sessions)


async def test_product_by_id_that_cannot_exist_is_null(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    query = "query($id: ID!) { product(id: $id) { handle } }"
    known = await gql(query, {"id": str(catalog.products["red-cap"])})
    assert known["data"]["product"] == {"handle": "red-cap"}
    for bad in ("99999999999999999999", "\u00b2", "\u0661", "-1", "1.0"):
        body = await gql(query, {"id": bad})
        assert body == {"data": {"product": None}}, bad
    await assert_invariants(sessions)
