"""inventoryReport's back-office figures (issue 16, item 7): topSellers, ordersCancelled,
unitsReservedNow and unitsUnavailableByState, each checked against what the test did
through the real use cases (carts, checkouts, payments, cancels, expiry, state moves)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Reservation
from gql_inventory.orders import payment_outcomes
from gql_inventory.stock import report as report_module
from gql_inventory.stock.expiry import expire_reservations
from gql_inventory.stock.report import UnitsByState, VariantSales, inventory_report
from tests.conftest import GraphQLCaller
from tests.support import graphql
from tests.support.catalog import Catalog

REPORT = """query($from: DateTime!, $to: DateTime!) { inventoryReport(from: $from, to: $to) {
  unitsSold topSellers { variant { sku } unitsSold } ordersCancelled unitsReservedNow
  unitsUnavailableByState { damaged qualityControl safetyStock total } } }"""
MOVE = """mutation($input: MoveStockStateInput!) { moveStockState(input: $input) {
  userErrors { code } } }"""


async def _move(gql: GraphQLCaller, sku: str, quantity: int, from_: str, to: str) -> None:
    body = await gql(
        MOVE,
        {"input": {"sku": sku, "quantity": quantity, "from": from_, "to": to}},
        admin=True,
    )
    assert body["data"]["moveStockState"]["userErrors"] == [], body


async def _cancel(gql: GraphQLCaller, order_id: str) -> None:
    body = await gql(graphql.CANCEL, {"input": {"orderId": order_id}}, admin=True)
    assert body["data"]["cancelOrder"]["userErrors"] == [], body


async def test_back_office_figures_match_what_was_done(
    gql: GraphQLCaller,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)

    # Sales: MUG 3 + 2, SHIRT-L 4, SHIRT-M 1, SHIRT-S 1 (a tie with SHIRT-M: SKU order).
    first, _ = await graphql.paid_order(gql, sessions, {"MUG": 3, "SHIRT-S": 1})
    await graphql.paid_order(gql, sessions, {"MUG": 2})
    await graphql.paid_order(gql, sessions, {"SHIRT-L": 4})
    await graphql.paid_order(gql, sessions, {"SHIRT-M": 1})
    # A full refund with restock: topSellers count units sold, not net of returns.
    refund = await gql(graphql.REFUND, {"input": {"orderId": first}}, admin=True)
    assert refund["data"]["refundOrder"]["userErrors"] == [], refund

    # Cancellations, three ways: cancelOrder; the payment canceled; the cart expired.
    cancelled_by_admin, _ = await graphql.pending_order(gql, {"MUG": 1})
    await _cancel(gql, cancelled_by_admin)
    middle = datetime.now(UTC)  # one cancellation before this instant, two after
    canceled_payment, _ = await graphql.pending_order(gql, {"SHIRT-S": 1})
    async with sessions.begin() as session:
        outcome = await payment_outcomes.payment_canceled(
            UnitOfWork(session, actor="stripe"), uuid.UUID(canceled_payment)
        )
    assert outcome == "cancelled"
    _, ran_out = await graphql.pending_order(gql, {"MUG": 2})
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(ran_out))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with sessions.begin() as session:
        swept = await expire_reservations(UnitOfWork(session, actor="system"))
    assert len(swept.cancelled_orders) == 1
    # Not a cancellation: a refund of a paid order (already done above), a released cart.
    released = await graphql.reserve(gql, {"MUG": 1})
    body = await gql(graphql.RELEASE, {"id": released["id"]})
    assert body["data"]["releaseReservation"]["userErrors"] == []

    # Held now: two open carts (2 + 1 + 3 units), and units moved out of AVAILABLE.
    await graphql.reserve(gql, {"SHIRT-M": 2})
    await graphql.reserve(gql, {"MUG": 1, "SHIRT-S": 3})
    await _move(gql, "MUG", 2, "AVAILABLE", "DAMAGED")
    await _move(gql, "MUG", 1, "DAMAGED", "AVAILABLE")
    await _move(gql, "SHIRT-S", 3, "AVAILABLE", "QUALITY_CONTROL")
    await _move(gql, "MUG", 1, "AVAILABLE", "SAFETY_STOCK")
    await _move(gql, "MUG", 2, "AVAILABLE", "SAFETY_STOCK")
    end = datetime.now(UTC) + timedelta(seconds=1)

    async with engine.connect() as conn:
        report = await inventory_report(conn, start, end)
        early = await inventory_report(conn, start, middle)
    v = catalog.variants
    assert report.top_sellers == [
        VariantSales(v["MUG"], "MUG", 5),
        VariantSales(v["SHIRT-L"], "SHIRT-L", 4),
        VariantSales(v["SHIRT-M"], "SHIRT-M", 1),
        VariantSales(v["SHIRT-S"], "SHIRT-S", 1),
    ]
    assert sum(s.units_sold for s in report.top_sellers) == report.units_sold == 11
    assert report.orders_cancelled == 3
    assert early.orders_cancelled == 1
    assert report.units_reserved_now == 2 + 1 + 3
    assert report.unavailable_now == UnitsByState(damaged=1, quality_control=3, safety_stock=3)
    assert report.unavailable_now.total == 7
    # "now" figures do not depend on the window
    assert (early.units_reserved_now, early.unavailable_now) == (6, report.unavailable_now)

    # the same figures over GraphQL, and the held units agree with the variants' own
    body = await gql(REPORT, {"from": start.isoformat(), "to": end.isoformat()}, admin=True)
    assert "errors" not in body, body
    served: dict[str, Any] = body["data"]["inventoryReport"]
    assert served["topSellers"] == [
        {"variant": {"sku": "MUG"}, "unitsSold": 5},
        {"variant": {"sku": "SHIRT-L"}, "unitsSold": 4},
        {"variant": {"sku": "SHIRT-M"}, "unitsSold": 1},
        {"variant": {"sku": "SHIRT-S"}, "unitsSold": 1},
    ]
    assert served["ordersCancelled"] == 3
    assert served["unitsReservedNow"] == 6
    assert served["unitsUnavailableByState"] == {
        "damaged": 1,
        "qualityControl": 3,
        "safetyStock": 3,
        "total": 7,
    }
    stock = await gql(
        '{ variants(skus: ["MUG", "SHIRT-S", "SHIRT-M", "SHIRT-L", "CAP"]) { reserved } }'
    )
    assert sum(x["reserved"] for x in stock["data"]["variants"]) == 6


async def test_top_sellers_are_limited_and_windowed(
    gql: GraphQLCaller,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    await graphql.paid_order(gql, sessions, {"MUG": 1})
    await graphql.paid_order(gql, sessions, {"SHIRT-S": 2})
    await graphql.paid_order(gql, sessions, {"SHIRT-L": 3})
    end = datetime.now(UTC) + timedelta(seconds=1)
    monkeypatch.setattr(report_module, "TOP_SELLERS", 2)
    async with engine.connect() as conn:
        top_two = await inventory_report(conn, start, end)
        before = await inventory_report(conn, start - timedelta(hours=1), start)
    assert [s.sku for s in top_two.top_sellers] == ["SHIRT-L", "SHIRT-S"]
    assert top_two.units_sold == 6  # the limit cuts the list, not the total
    assert (before.top_sellers, before.orders_cancelled) == ([], 0)
